"""QONNX export: the file carries torch's integer weights, qonnx execution equals torch on the whole digits test
set, the metadata the compiler reads is right, and the audit fails loudly on a file that breaks a bound."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from _training_util import qonnx_logits, torch_logits
from onnx import numpy_helper

from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.audit import META_KEY, audit_onnx, mac_layers, quant_integers, read_metadata

pytestmark = pytest.mark.slow  # trains digits models (session fixtures or ~1-3 s runs)

RUNS = ["digits_mlp_a2q", "digits_cnn_a2q", "digits_mlp_unconstrained"]


@pytest.fixture(params=RUNS)
def run_dir(request):
    return request.getfixturevalue(request.param)


def test_qonnx_execution_equals_torch_on_the_whole_test_set(run_dir):
    x = np.load(run_dir / "test_inputs.npy")
    y = np.load(run_dir / "test_labels.npy")
    t = torch_logits(run_dir, x)
    q = qonnx_logits(run_dir / "model.onnx", x)
    assert len(x) == 360 and t.shape == q.shape == (360, 10)
    diff = float(np.abs(t - q).max())
    agree = t.argmax(1) == q.argmax(1)
    assert agree.all(), f"top-1 differs on {int((~agree).sum())} of {len(x)} samples (max |logit diff| {diff:.3g})"
    assert diff < 1e-3 * max(1.0, float(np.abs(t).max())), diff
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert float((q.argmax(1) == y).mean()) == pytest.approx(metrics["test_accuracy"])


def test_graph_integers_are_torch_integers(run_dir):
    import torch

    from a2qflow.training.export import torch_integer_weights
    from a2qflow.training.train import load_run

    cfg, net = load_run(run_dir)
    specs = cfg.layer_specs()
    ints = torch_integer_weights(net, specs, torch.from_numpy(np.load(run_dir / "test_inputs.npy")[:4]))
    model = onnx.load(run_dir / "model.onnx")
    meta = read_metadata(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    found = {m["weight"]: m for m in mac_layers(model)}
    from a2qflow.training.audit import _Graph

    g = _Graph(model)
    for s, m in zip(specs, meta["layers"]):
        q = found[m["onnx_weight"]]["quant"]
        assert q is not None and q.op_type == "Quant"
        got = quant_integers(inits[m["onnx_weight"]], **g.quant_params(q))
        assert np.array_equal(got, ints[s.name].q), s.name
        assert np.abs(got).max() <= 2 ** (s.weight_bits - 1) - 1


def test_metadata_names_layers_weights_and_targets(digits_cnn_a2q):
    model = onnx.load(digits_cnn_a2q / "model.onnx")
    meta = read_metadata(model)
    assert meta["input_shape"] == [1, 8, 8] and meta["dataset"] == "digits"
    assert [m["name"] for m in meta["layers"]] == ["conv0", "conv1", "fc0"]
    assert [m["onnx_weight"] for m in meta["layers"]] == [m["weight"] for m in mac_layers(model)]
    for m in meta["layers"]:
        assert (m["weight_quant"], m["target_acc_bits"], m["weight_bits"], m["input_bits"], m["input_signed"]) == (
            "a2q", 12, 4, 4, False)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 1, 8, 8]


def test_audit_json_lists_every_layer_margin(digits_mlp_a2q, digits_mlp_unconstrained):
    audit = json.loads((digits_mlp_a2q / "audit.json").read_text())
    assert audit["ok"] and not audit["violations"]
    assert [l["name"] for l in audit["layers"]] == ["fc0", "fc1", "fc2"]
    for l in audit["layers"]:
        assert l["l1_max"] <= l["l1_bound"] and l["l1_margin"] >= 0 and l["acc_margin_bits"] >= 0
        assert l["acc_bits_exact"] <= 12 and len(l["l1_margin_per_channel"]) == l["channels"]
    base = json.loads((digits_mlp_unconstrained / "audit.json").read_text())
    assert all("l1_bound" not in l and l["target_acc_bits"] is None for l in base["layers"])
    assert {l["weight_quant"] for l in base["layers"]} == {"unconstrained"}  # the metadata spells the new word
    assert max(l["acc_bits_exact"] for l in base["layers"]) > 12  # unconstrained weights need a wider accumulator


def _tamper(src, dst, layer: str, factor: float):
    """Copy of an exported model whose `layer` weights are scaled (still on the Quant grid, so still integers)."""
    model = onnx.load(src)
    name = next(m["onnx_weight"] for m in read_metadata(model)["layers"] if m["name"] == layer)
    for init in model.graph.initializer:
        if init.name == name:
            w = numpy_helper.to_array(init) * np.float32(factor)
            init.CopyFrom(numpy_helper.from_array(w.astype(np.float32), name))
    onnx.save(model, dst)


def test_audit_fails_loudly_naming_layer_channel_l1_and_bound(digits_mlp_a2q, tmp_path):
    bad = tmp_path / "bad.onnx"
    _tamper(digits_mlp_a2q / "model.onnx", bad, "fc1", 3.0)
    with pytest.raises(A2QFlowError) as e:
        audit_onnx(bad)
    msg = str(e.value)
    assert "\n" not in msg
    assert "layer fc1 channel" in msg and "||q||_1 = " in msg and "a2q bound 127.9 for P=12" in msg, msg
    report = audit_onnx(bad, raise_on_violation=False)
    assert not report["ok"]
    fc1 = next(l for l in report["layers"] if l["name"] == "fc1")
    assert fc1["l1_margin"] < 0 and not fc1["ok"]


def test_audit_checks_the_exact_range_too(digits_mlp_a2q, tmp_path):
    """Claim P=11 for fc0 in the metadata: L1 and exact-range checks both flag it."""
    model = onnx.load(digits_mlp_a2q / "model.onnx")
    meta = read_metadata(model)
    exact = json.loads((digits_mlp_a2q / "audit.json").read_text())["layers"][0]["acc_bits_exact"]
    meta["layers"][0]["target_acc_bits"] = exact - 1
    for p in model.metadata_props:
        if p.key == META_KEY:
            p.value = json.dumps(meta)
    onnx.save(model, tmp_path / "m.onnx")
    report = audit_onnx(tmp_path / "m.onnx", raise_on_violation=False)
    assert not report["ok"] and any("layer fc0 channel" in v for v in report["violations"])
    assert report["layers"][0]["acc_margin_bits"] == -1


def test_unreadable_onnx_is_one_line(tmp_path):
    p = tmp_path / "x.onnx"
    p.write_bytes(b"garbage")
    with pytest.raises(A2QFlowError, match=r"x\.onnx: not a readable ONNX model"):
        audit_onnx(p)


def test_plain_brevitas_export_of_a2q_breaks_the_bound_and_the_audit_catches_it(digits_mlp_a2q, tmp_path):
    """The trap this module exists for: Brevitas' own export_qonnx writes the float weight with a ROUND Quant node,
    whose integers are not the ones A2Q trained (round-to-zero of w / pre_scale). If an upgrade fixes it, this
    test skips with a note; the fix in training/export.py stays correct either way (it is verified per file)."""
    import torch
    from brevitas.export import export_qonnx

    from a2qflow.training.train import load_run

    _, net = load_run(digits_mlp_a2q)
    raw = tmp_path / "raw.onnx"
    with torch.no_grad():
        export_qonnx(net, args=torch.zeros(1, 64), export_path=str(raw), dynamo=False)
    model = onnx.load(raw)
    fixed_meta = read_metadata(onnx.load(digits_mlp_a2q / "model.onnx"))
    model.metadata_props.add(key=META_KEY, value=json.dumps(fixed_meta))
    onnx.save(model, raw)
    report = audit_onnx(raw, raise_on_violation=False)
    fixed = json.loads((digits_mlp_a2q / "audit.json").read_text())
    raw_l1 = [l["l1_max"] for l in report["layers"]]
    fixed_l1 = [l["l1_max"] for l in fixed["layers"]]
    if report["ok"] and raw_l1 == fixed_l1:
        pytest.skip("this Brevitas version exports A2Q integers exactly; the rewrite is now a no-op")
    assert not report["ok"] and max(raw_l1) > 127.9375, (raw_l1, fixed_l1)
    with pytest.raises(A2QFlowError, match=r"layer fc\d channel \d+: \|\|q\|\|_1 = \d+ exceeds the a2q bound"):
        audit_onnx(raw)
