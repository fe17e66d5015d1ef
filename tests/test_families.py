"""The model families (resnet, mobilenet, cnn1d, the W2A2 MLP): each trains with the float-twin recipe,
exports with torch's integers, and the exported file keeps every channel's A2Q bound; sweep / search read the
layers' K and C from the built model.

Each family is trained once per session from its shipped config (flows/configs/*.yaml) shrunk by `tiny`: one
epoch of twin and fine-tune on 200 digits images, a few calibration batches, small widths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from _training_util import qonnx_logits, torch_logits

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "flows" / "configs"


def tiny(config: str, **model) -> dict:
    """The shipped config `config` as a dict, shrunk for tests: digits, 1 + 1 epochs, 200 training images."""
    d = yaml.safe_load((CONFIGS / f"{config}.yaml").read_text())
    d["name"] = f"tiny_{d['name']}"
    d["data"] = {"dataset": "digits", "max_train": 200}
    d["model"].update(model)
    d["train"].update(epochs=1, finetune_epochs=1, calibration_batches=5, batch_size=32)
    return d


TINY = {
    "resnet": lambda: tiny("digits_resnet", channels=[2, 4]),
    "resnet_trunc": lambda: tiny("digits_resnet", channels=[2, 4], gap="trunc"),
    "mobilenet": lambda: tiny("digits_mobilenet", channels=[2, 4]),
    "cnn1d": lambda: tiny("mnist5k_cnn1d", conv_channels=[4, 4]),
    "w2a2": lambda: tiny("digits_mlp_w2a2", hidden=[16]),
}


def train_tiny(tmp_path_factory, kind: str) -> Path:
    from a2qflow.flows.config import parse_config
    from a2qflow.training.train import run_training

    cfg = parse_config(TINY[kind](), f"<tiny {kind}>")
    out = tmp_path_factory.mktemp(f"family_{kind}")
    run_training(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module", params=sorted(TINY))
def family_run(request, tmp_path_factory):
    return request.param, train_tiny(tmp_path_factory, request.param)


def test_every_shipped_family_config_parses():
    from a2qflow.flows.config import load_config

    for name in ("digits_resnet", "digits_mobilenet", "mnist5k_cnn1d", "digits_mlp_w2a2"):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        assert cfg.layer_specs()


def test_family_trains_exports_and_qonnx_equals_torch(family_run):
    """The run's QONNX file reproduces the quantized torch model's logits on the test set."""
    kind, out = family_run
    x = np.load(out / "test_inputs.npy")[:64]
    t, q = torch_logits(out, x), qonnx_logits(out / "model.onnx", x)
    np.testing.assert_allclose(q.reshape(t.shape), t, atol=1e-3 * max(1.0, float(np.abs(t).max())))
    assert (q.reshape(t.shape).argmax(1) == t.argmax(1)).all()


def test_family_file_integers_equal_torch_and_keep_the_l1_bound(family_run):
    """Decoded from the file: every layer's integers equal torch's, and every channel's ||q||_1 is within the A2Q /
    A2Q+ bound of its target P (checked here from the formulas, not from the audit's own verdict)."""
    import onnx
    import torch

    from a2qflow.hw.compiler.ir import IntType
    from a2qflow.training.audit import _Graph, mac_layers, read_metadata, weight_matrix
    from a2qflow.training.export import torch_integer_weights
    from a2qflow.training.quant import l1_budget
    from a2qflow.training.train import load_run

    kind, out = family_run
    cfg, net = load_run(out)
    specs = {s.name: s for s in cfg.layer_specs()}
    x = torch.from_numpy(np.load(out / "test_inputs.npy")[:8])
    ints = torch_integer_weights(net, list(specs.values()), x)
    model = onnx.load(str(out / "model.onnx"))
    g, meta = _Graph(model), read_metadata(model)
    by_weight = {m["onnx_weight"]: m["name"] for m in meta["layers"]}
    found = mac_layers(model)
    assert [by_weight[f["weight"]] for f in found] == list(specs)
    for f in found:
        name = by_weight[f["weight"]]
        spec = specs[name]
        q = g.quant(f["quant"]).integers(g.init[f["weight"]], np.float32)
        np.testing.assert_array_equal(q, ints[name].q, err_msg=name)
        l1 = np.abs(weight_matrix(g, f["node"], q)).sum(1)
        bound = l1_budget(spec.weight_quant, spec.target_acc_bits, IntType(spec.input_bits, spec.input_signed))
        assert (l1 <= bound).all(), (name, l1.max(), bound)
    audit = __import__("json").loads((out / "audit.json").read_text())
    assert audit["ok"] and all(layer["audited"] for layer in audit["layers"])


def test_depthwise_and_conv1d_dot_lengths_in_the_audit_match_the_model(family_run):
    """The audit's K per layer (from the file's weight tensors) equals layer_shapes' K (from the built model):
    3x3 depthwise convs have K = 9 whatever the channel count; Conv1d has K = IC * kernel."""
    import json

    from a2qflow.training.config import DATASET_SHAPES
    from a2qflow.training.models import layer_shapes
    from a2qflow.training.train import load_run

    kind, out = family_run
    cfg, _ = load_run(out)
    shapes = layer_shapes(cfg.model, DATASET_SHAPES["digits"], 10)
    audit = json.loads((out / "audit.json").read_text())
    assert {layer["name"]: layer["K"] for layer in audit["layers"]} == {n: s.K for n, s in shapes.items()}
    for layer in audit["layers"]:
        s = shapes[layer["name"]]
        if s.op == "depthwise":
            assert layer["K"] == 9 and layer["groups"] == s.channels > 1
        if s.op == "conv1d":
            assert len(layer["kernel"]) == 1 and layer["K"] == s.in_shape[0] * cfg.model.kernel_size


def test_resnet_add_branches_share_one_scale_in_the_file(tmp_path_factory):
    """Both inputs of every residual Add come from Quant nodes with the same scale (one shared QuantIdentity), so
    the add is an integer add of two tensors on one grid."""
    import onnx

    from a2qflow.training.audit import _Graph

    out = train_tiny(tmp_path_factory, "resnet")
    model = onnx.load(str(out / "model.onnx"))
    g = _Graph(model)
    adds = [n for n in model.graph.node if n.op_type == "Add"]
    assert len(adds) == 2  # one block per stage, two stages
    for add in adds:
        producers = [g.producer[i] for i in add.input]
        assert [p.op_type for p in producers] == ["Quant", "Quant"]
        s0, s1 = (np.asarray(g.quant(p).scale) for p in producers)
        np.testing.assert_array_equal(s0, s1)
        assert all(g.quant(p).signed for p in producers)


def test_float_twin_has_the_quantized_models_names():
    """The float-twin recipe loads the twin by name: every twin tensor exists with the same shape in the
    quantized model, and every MAC layer name of the config is an attribute of both."""
    from a2qflow.flows.config import parse_config
    from a2qflow.training.config import DATASET_SHAPES, mac_layer_names
    from a2qflow.training.models import build_model

    for kind in ("resnet", "mobilenet", "cnn1d"):
        cfg = parse_config(TINY[kind](), "<t>")
        specs = cfg.layer_specs()
        q = build_model(cfg.model, specs, DATASET_SHAPES["digits"], 10)
        f = build_model(cfg.model, specs, DATASET_SHAPES["digits"], 10, float_twin=True)
        qs = q.state_dict()
        assert all(k in qs and qs[k].shape == v.shape for k, v in f.state_dict().items()), kind
        for name in mac_layer_names(cfg.model):
            assert hasattr(q, name) and hasattr(f, name)


def test_layer_shapes_feed_sweep_and_search():
    """sweep.dot_lengths / search.out_channels / layer_folding come from the built model (a depthwise conv's K is
    its 3x3 kernel, a pointwise conv's K its input channels)."""
    from a2qflow.flows.config import load_config
    from a2qflow.flows.search import layer_folding, out_channels
    from a2qflow.flows.sweep import dot_lengths

    cfg = load_config(CONFIGS / "digits_mobilenet.yaml")
    ks, cs = dot_lengths(cfg), out_channels(cfg)
    assert ks == {"stem": 9, "dw0": 9, "pw0": 8, "dw1": 9, "pw1": 16, "fc": 32}
    assert cs == {"stem": 8, "dw0": 8, "pw0": 16, "dw1": 16, "pw1": 32, "fc": 10}
    assert set(layer_folding(cfg)) == set(ks)
    cfg = load_config(CONFIGS / "digits_resnet.yaml")
    assert list(dot_lengths(cfg)) == ["stem", "block0_conv0", "block0_conv1", "stage1", "block1_conv0",
                                      "block1_conv1", "fc"]


@pytest.mark.parametrize("model, field", [
    ({"kind": "resnet", "channels": []}, "model.channels"),
    ({"kind": "mobilenet", "channels": [4, 0]}, "model.channels"),
    ({"kind": "cnn1d", "conv_channels": [4], "kernel_size": 4}, "model.kernel_size"),
])
def test_bad_family_sizes_are_one_line_errors_naming_the_field(model, field):
    from a2qflow.flows.config import parse_config
    from a2qflow.hw.errors import A2QFlowError

    d = tiny("digits_resnet")
    d["model"] = model
    with pytest.raises(A2QFlowError) as e:
        parse_config(d, "cfg.yaml")
    assert field in str(e.value) and "\n" not in str(e.value)


def test_too_many_stride_2_stages_for_the_input_is_a_one_line_error():
    from a2qflow.flows.config import parse_config
    from a2qflow.hw.errors import A2QFlowError

    d = tiny("digits_resnet", channels=[2, 2, 2, 2, 2, 2], blocks=0)
    with pytest.raises(A2QFlowError) as e:
        parse_config(d, "cfg.yaml")
    assert "model" in str(e.value) and "8x8" in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------ end to end

# The hardware stages each tiny family runs: C-sim and Verilator.
HW_STAGES = {kind: "csim,rtlsim" for kind in ("w2a2", "cnn1d", "mobilenet", "resnet", "resnet_trunc")}


def _flow_run(tmp_path: Path, kind: str, stages: str = "csim,rtlsim") -> Path:
    """`a2qflow run` on the tiny config through `stages` (train, compile, hls, csim, rtl, rtlsim by default)."""
    from a2qflow.flows.cli import main

    cfg = tmp_path / f"{kind}.yaml"
    cfg.write_text(yaml.safe_dump(TINY[kind]()))
    run = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(run), "--stages", stages, "--no-progress"]) == 0
    return run


@pytest.mark.parametrize("kind", sorted(TINY))
def test_family_compiles_and_golden_model_has_torchs_top1(tmp_path, kind):
    """`a2qflow run --stages compile` on each tiny family: the plan holds the family's layer kinds (residual
    adds, average pool, depthwise conv, conv1d as conv), every MAC layer's width is at most its target, and the
    golden model's top-1 equals the quantized torch model's on every test input."""
    import json

    from a2qflow.hw.compiler import reference
    from a2qflow.hw.compiler.plan import load_build

    run = _flow_run(tmp_path, kind, "compile")
    plan = json.loads((run / "build" / "plan.json").read_text())
    kinds = {layer["kind"] for layer in plan["layers"]}
    residual = {"add", "requant", "avgpool", "conv", "dense"}
    expect = {"resnet": residual, "resnet_trunc": residual, "mobilenet": {"dwconv", "avgpool", "conv", "dense"},
              "cnn1d": {"conv", "dense"}, "w2a2": {"dense"}}[kind]
    assert expect <= kinds, kinds
    for layer in plan["layers"]:
        if layer.get("target_acc_bits") is not None:
            assert layer["acc_bits"] <= layer["target_acc_bits"], layer["name"]
    if kind == "resnet_trunc":  # TruncAvgPool2d's integer truncation, not a pool + requantizer
        import onnx

        ops = [n.op_type for n in onnx.load(str(run / "train" / "model.onnx")).graph.node]
        assert "Trunc" in ops and "GlobalAveragePool" not in ops
    model, _ = load_build(run / "build")
    x = np.load(run / "train" / "test_inputs.npy")
    golden = reference.run(model, reference.prepare_inputs(model, x))
    np.testing.assert_array_equal(golden.logits.argmax(1), torch_logits(run / "train", x).argmax(1))


def _hardware_top1(build: Path, outputs: np.ndarray) -> np.ndarray:
    from a2qflow.hw.compiler import reference
    from a2qflow.hw.compiler.plan import load_build

    model, _ = load_build(build)
    return reference.logits(model, outputs).argmax(1)


@pytest.mark.parametrize("kind", sorted(HW_STAGES))
def test_family_hardware_matches_torch(tmp_path, kind):
    """`a2qflow run` to a report, and torch = golden = C-sim (= Verilator where it runs): 0 mismatches vs the
    golden model, 0 overflow events, C-sim and RTL outputs equal bit for bit, and the hardware's top-1 equals the
    quantized torch model's on every
    test input, on random inputs and on saturating ones (all 0, all 1, 0.5 everywhere: a rounding tie at the
    W2A2 input scale)."""
    import json

    import a2qflow

    stages = HW_STAGES[kind]
    run = _flow_run(tmp_path, kind, stages + ",report")
    build = run / "build"
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["accuracy"]["C-sim"]["value"] == report["accuracy"]["quantized (torch)"]["value"]
    x = np.load(run / "train" / "test_inputs.npy")
    cs = json.loads((build / "csim" / "csim.json").read_text())
    assert cs["mismatches"] == 0 and cs["overflow_events"] == 0
    y_c = np.load(build / "csim" / "outputs.npy")
    np.testing.assert_array_equal(_hardware_top1(build, y_c), torch_logits(run / "train", x).argmax(1))
    if kind == "w2a2":  # the input scale is float32(1/3) and the test set has pixels of 0.5 on the rounding tie
        from a2qflow.hw.compiler.plan import load_build

        model, _ = load_build(build)
        assert np.float32(model.input_quant.scale) == np.float32(1 / 3)
        assert (x == 0.5).any()
    rng = np.random.default_rng(0)
    extra = np.concatenate([rng.random((24, *x.shape[1:]), dtype=np.float32),
                            np.stack([np.full(x.shape[1:], v, np.float32) for v in (0.0, 1.0, 0.5)])])
    sim = a2qflow.csim(build, extra)
    assert sim.mismatches == 0 and sim.overflow_events == 0
    np.testing.assert_array_equal(_hardware_top1(build, sim.outputs), torch_logits(run / "train", extra).argmax(1))
    if "rtlsim" in stages:
        rs = json.loads((build / "rtlsim" / "rtlsim.json").read_text())
        assert rs["mismatches"] == 0
        np.testing.assert_array_equal(np.load(build / "rtlsim" / "outputs.npy"), y_c)
        assert a2qflow.rtlsim(build, extra)["mismatches"] == 0
        np.testing.assert_array_equal(np.load(build / "rtlsim" / "outputs.npy"), sim.outputs)
