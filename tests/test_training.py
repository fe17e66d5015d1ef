"""Training runs: the A2Q bound holds on every channel after training, runs are deterministic, outputs are
complete (or absent after an interrupt / failed audit), and the CLI works end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from _training_util import digits_config

from a2qflow.flows.config import load_config, parse_config
from a2qflow.hw.compiler.bounds import channel_ranges, l1_limit, l1_limit_zero_centered, l1_norms, signed_bits_for_range
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.train import OUTPUTS, load_run, run_training

pytestmark = pytest.mark.slow  # trains digits models (session fixtures or ~1-3 s runs)

def tiny(name, **over):
    """A ~1 s digits run: MLP 64-16-10, 2 epochs, no float twin."""
    over.setdefault("model", {"kind": "mlp", "hidden": [16]})
    over["train"] = {"epochs": 2, "float_reference": False, **over.get("train", {})}
    return parse_config(digits_config(name, **over), f"<{name}>")


def torch_ints(out):
    import torch

    from a2qflow.training.export import torch_integer_weights

    cfg, net = load_run(out)
    x = torch.from_numpy(np.load(out / "test_inputs.npy")[:4])
    return cfg.layer_specs(), torch_integer_weights(net, cfg.layer_specs(), x)


@pytest.mark.parametrize("bits", [4, 8], ids=lambda b: f"W{b}A{b}")
@pytest.mark.parametrize("P", [12, 16])
def test_a2q_bound_holds_on_every_channel_after_training(tmp_path, bits, P):
    cfg = tiny(f"w{bits}p{P}", quant={"weight_bits": bits, "input_bits": bits, "act_bits": bits, "acc_bits": P},
               train={"epochs": 3})
    m = run_training(cfg, tmp_path, progress=False)
    specs, ints = torch_ints(tmp_path)
    for s in specs:
        q = ints[s.name].q.reshape(ints[s.name].q.shape[0], -1)
        t = IntType(s.input_bits, s.input_signed)
        assert (l1_norms(q) <= l1_limit(P, t)).all(), (s.name, l1_norms(q).max(), l1_limit(P, t))
        lo, hi = channel_ranges(q, t)
        assert signed_bits_for_range(lo.min(), hi.max()) <= P
        assert np.abs(q).max() <= 2 ** (bits - 1) - 1
    audit = json.loads((tmp_path / "audit.json").read_text())  # the exported file, audited independently
    assert audit["ok"] and all(l["l1_margin"] >= 0 and l["acc_margin_bits"] >= 0 for l in audit["layers"])
    if bits == 4 or P == 16:  # W8A8 P=12 leaves an L1 budget of only 8 per channel: no accuracy promise there
        assert m["test_accuracy"] > 0.3, m["test_accuracy"]


def test_a2q_plus_zero_centred_bound_holds(tmp_path):
    run_training(tiny("a2qp", quant={"weight_quant": "a2q+", "acc_bits": 10}), tmp_path, progress=False)
    specs, ints = torch_ints(tmp_path)
    for s in specs:
        q = ints[s.name].q
        t = IntType(s.input_bits, s.input_signed)
        assert (l1_norms(q) <= l1_limit_zero_centered(10, t)).all()
        lo, hi = channel_ranges(q, t)
        assert signed_bits_for_range(lo.min(), hi.max()) <= 10
    audit = json.loads((tmp_path / "audit.json").read_text())
    assert audit["ok"] and {l["weight_quant"] for l in audit["layers"]} == {"a2q+"}


def test_same_seed_same_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    ma = run_training(tiny("det"), a, progress=False)
    mb = run_training(tiny("det"), b, progress=False)
    for m in (ma, mb):
        m.pop("seconds_per_epoch")
    assert ma == mb
    assert (a / "model.onnx").read_bytes() == (b / "model.onnx").read_bytes()
    mc = run_training(parse_config({**digits_config("det", model={"kind": "mlp", "hidden": [16]},
                                                    train={"epochs": 2}), "seed": 1}, "x"), tmp_path / "c",
                      progress=False)
    assert mc["history"] != ma["history"]


def test_float_twin_recipe_is_deterministic_with_or_without_the_twin_cache(tmp_path):
    """Same config + seed -> same accuracies (every phase) and the same model.onnx, run after run; a float twin
    reused from training.recipe.TwinCache (what the benchmark does) changes nothing."""
    from a2qflow.training.recipe import TwinCache

    cfg = tiny("twin", train={"float_reference": True, "epochs": 2, "finetune_epochs": 1, "calibration_batches": 20},
               quant={"weight_quant": "a2q+", "weight_bits": 8, "input_bits": 8, "act_bits": 8, "acc_bits": 14})
    cache = TwinCache()
    runs = [run_training(cfg, tmp_path / name, progress=False, twin_cache=c)
            for name, c in (("a", None), ("b", cache), ("c", cache))]
    assert len(cache) == 1
    for m in runs:
        m.pop("seconds_per_epoch")
        for ph in m["phases"].values():
            ph.pop("seconds_per_epoch", None)
    assert runs[0] == runs[1] == runs[2]
    assert runs[0]["recipe"] == "float_twin" and set(runs[0]["phases"]) == {"float", "init", "finetune"}
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "c" / "model.onnx").read_bytes()
    init = runs[0]["layers"]["fc0"]["init"]
    assert init["max_ratio"] <= init["budget"]  # no channel starts clamped


def test_run_folder_is_complete(digits_mlp_a2q):
    out = digits_mlp_a2q
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # nothing else (no staging leftovers)
    m = json.loads((out / "metrics.json").read_text())
    for key in ("name", "dataset", "seed", "epochs", "best_epoch", "seconds_per_epoch", "val_accuracy",
                "test_accuracy", "float_test_accuracy", "history", "layers"):
        assert key in m, key
    assert len(m["history"]) == m["epochs"] and m["history"][m["best_epoch"] - 1] == m["val_accuracy"]
    assert m["val_accuracy"] == max(m["history"])
    assert m["test_accuracy"] > 0.8 and m["float_test_accuracy"] > 0.85
    assert list(m["layers"]) == ["fc0", "fc1", "fc2"]
    for l in m["layers"].values():
        assert l["weight_quant"] == "a2q" and l["target_acc_bits"] == 12 and 0 <= l["weight_sparsity"] < 1
        assert (l["weight_bits"], l["input_bits"], l["input_signed"]) == (4, 4, False)
    x, y = np.load(out / "test_inputs.npy"), np.load(out / "test_labels.npy")
    assert x.shape == (360, 64) and x.dtype == np.float32 and y.dtype == np.int64 and 0 <= x.min() <= x.max() <= 1
    assert load_config(out / "config.yaml").quant.acc_bits == 12


def test_cnn_inputs_are_images(digits_cnn_a2q):
    assert np.load(digits_cnn_a2q / "test_inputs.npy").shape == (360, 1, 8, 8)
    m = json.loads((digits_cnn_a2q / "metrics.json").read_text())
    assert m["float_test_accuracy"] is None and list(m["layers"]) == ["conv0", "conv1", "fc0"]


def test_interrupted_run_leaves_previous_outputs_untouched(tmp_path, monkeypatch):
    import a2qflow.training.train as tt

    run_training(tiny("int", train={"epochs": 1}), tmp_path, progress=False)
    before = {n: (tmp_path / n).read_bytes() for n in OUTPUTS}

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tt, "export_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny("int", seed=3, train={"epochs": 1}), tmp_path, progress=False)
    assert {n: (tmp_path / n).read_bytes() for n in OUTPUTS} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUTS)
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny("int", train={"epochs": 1}), fresh, progress=False)
    assert list(fresh.iterdir()) == []


def test_failed_audit_fails_the_run_and_writes_nothing(tmp_path, monkeypatch):
    """An exported file that breaks a bound (simulated: fc0's weights tripled) must stop the run loudly."""
    import onnx
    from onnx import numpy_helper

    import a2qflow.training.train as tt

    real = tt.export_model

    def broken_export(net, specs, input_shape, path, dataset, calib):
        meta = real(net, specs, input_shape, path, dataset, calib)
        model = onnx.load(path)
        for init in model.graph.initializer:
            if init.name == "fc0.weight":
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(3), init.name))
        onnx.save(model, path)
        return meta

    monkeypatch.setattr(tt, "export_model", broken_export)
    with pytest.raises(A2QFlowError) as e:
        run_training(tiny("bad", train={"epochs": 1}), tmp_path, progress=False)
    msg = str(e.value)
    assert "layer fc0 channel" in msg and "exceeds the a2q bound" in msg and "\n" not in msg
    assert str(tmp_path / "model.onnx") in msg and ".staging" not in msg
    assert list(tmp_path.iterdir()) == []


def test_float_layer_is_exported_and_left_unaudited(tmp_path):
    cfg = tiny("flt", quant={"layers": {"fc1": {"weight_quant": "float"}}})
    m = run_training(cfg, tmp_path, progress=False)
    audit = json.loads((tmp_path / "audit.json").read_text())
    assert [l["audited"] for l in audit["layers"]] == [True, False] and audit["ok"]
    assert m["layers"]["fc1"]["weight_quant"] == "float" and m["layers"]["fc1"]["target_acc_bits"] is None


def test_mnist_sized_cnn_trains_without_code_changes(tmp_path):
    """A 28x28 CNN from config only, on small MNIST-layout files written here."""
    from test_data import write_mnist

    write_mnist(tmp_path / "data", n_train=40, n_test=10)
    cfg = tiny("mnist_cnn", data={"dataset": "mnist", "root": str(tmp_path / "data")},
               model={"kind": "cnn", "conv_channels": [4, 4], "hidden": [8]}, train={"epochs": 1, "batch_size": 16})
    m = run_training(cfg, tmp_path / "run", progress=False)
    assert np.load(tmp_path / "run" / "test_inputs.npy").shape == (10, 1, 28, 28)
    assert list(m["layers"]) == ["conv0", "conv1", "fc0", "fc1"] and m["dataset"] == "mnist"
    assert json.loads((tmp_path / "run" / "audit.json").read_text())["ok"]


def test_cli_train_end_to_end(tmp_path, capsys):
    from a2qflow.flows.cli import main

    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(digits_config("cli", model={"kind": "mlp", "hidden": [16]})))
    assert main(["train", str(p), "--out", str(tmp_path / "out"), "--epochs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "fc0: a2q W4 A4u P=12" in out
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["epochs"] == 1
    assert main(["train", str(p), "--out", str(tmp_path / "o2"), "--epochs", "0"]) == 2
