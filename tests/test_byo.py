"""Bring your own Brevitas model: `a2qflow.export_qonnx` on models the trainer never builds (signed inputs, A2Q+
with BatchNorm, strided and padded convolutions, a per-tensor layer, nested modules), then compile, C-sim and the
integer QONNX; Brevitas' raw export of the same models must trigger the compile warning and fail the audit."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from _byo_models import build

import a2qflow
from a2qflow.flows.cli import main
from a2qflow.hw.compiler import reference
from a2qflow.hw.compiler.ir import load_model
from a2qflow.hw.compiler.qonnx_check import qonnx_outputs
from a2qflow.hw.errors import A2QFlowError
from a2qflow.training.audit import read_metadata

KINDS = ["mlp", "cnn"]


@pytest.fixture(scope="module", params=KINDS)
def exported(request, tmp_path_factory):
    """(kind, model, example inputs, targets by module path, a2qflow export, raw Brevitas export, export result)."""
    from brevitas.export import export_qonnx as brevitas_export_qonnx

    net, x, targets = build(request.param)
    d = tmp_path_factory.mktemp(f"byo_{request.param}")
    before = copy.deepcopy(net.state_dict())
    res = a2qflow.export_qonnx(net, x, d / "model.onnx")
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "export_qonnx modified the user's model"
    with torch.no_grad():
        brevitas_export_qonnx(net, args=x[:1], export_path=str(d / "raw.onnx"), dynamo=False)
    return request.param, net, x, targets, d, res


def _inputs(x: torch.Tensor, n_random: int = 48) -> np.ndarray:
    """Random inputs in the data's range plus saturating ones (far outside the input quantizer's range)."""
    rng = np.random.default_rng(7)
    lo, hi = float(x.min()), float(x.max())
    rand = rng.uniform(lo, hi, (n_random, *x.shape[1:]))
    sat = rng.choice([lo * 50, hi * 50], (16, *x.shape[1:]))
    return np.concatenate([rand, sat]).astype(np.float32)


def _torch(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = net(torch.from_numpy(x))
    return getattr(y, "value", y).numpy()


def test_export_reads_each_quantizers_target_and_the_plan_meets_it(exported, tmp_path):
    kind, net, x, targets, d, res = exported
    meta = read_metadata(onnx.load(d / "model.onnx"))
    got = {l["module"]: l["target_acc_bits"] for l in meta["layers"] if l["target_acc_bits"] is not None}
    assert got == targets
    assert meta["exporter"] == "a2qflow.export_qonnx" and res["audit"]["ok"]
    plan = a2qflow.compile(d / "model.onnx", tmp_path / "b")
    assert not plan.warnings
    by_name = {l.name: l for l in plan.layers}
    for l in meta["layers"]:
        if l["target_acc_bits"] is not None:
            lp = by_name[l["name"]]
            assert lp.target_acc_bits == l["target_acc_bits"] and lp.acc_bits_exact <= lp.target_acc_bits, lp
    # an override per layer name replaces the quantizer's target (and a too-small one fails the export's audit)
    first = next(iter(targets))
    with pytest.raises(A2QFlowError, match=rf"layer {first.replace('.', '_')} channel \d+"):
        a2qflow.export_qonnx(net, x, tmp_path / "tight.onnx", acc_bits={first: 4})
    assert not (tmp_path / "tight.onnx").exists()


def test_csim_golden_and_qonnx_of_both_files_agree_with_torch(exported, tmp_path):
    kind, net, x, targets, d, res = exported
    build_dir = tmp_path / "b"
    plan = a2qflow.compile(d / "model.onnx", build_dir)
    xs = _inputs(x)
    sim = a2qflow.csim(build_dir, xs)
    assert sim.summary.mismatches == 0 and sim.summary.overflow_events == 0
    model = load_model(build_dir)
    xi = model.input_quant.quantize(xs)
    gold = reference.run(model, xi, plan.acc_bits())
    assert np.array_equal(sim.outputs, gold.acc)
    # qonnx' execution of the exported file: same top-1, logits within float32 rounding
    q = qonnx_outputs(d / "model.onnx", xs)
    q = next(iter(q.values())).reshape(len(xs), -1)
    assert np.array_equal(q.argmax(1), gold.logits.argmax(1))
    assert np.abs(q - gold.logits).max() <= 1e-4 * max(1.0, float(np.abs(gold.logits).max()))
    # qonnx' execution of the integer model: every accumulator bit for bit
    ctx = qonnx_int(build_dir / "model_int.onnx", xi)
    last = model.mac_layers()[-1].name
    assert np.array_equal(ctx[f"{last}_acc"].reshape(len(xs), -1).astype(np.int64), gold.acc)
    t = _torch(net, xs)
    agree = float(np.mean(t.argmax(1) == gold.logits.argmax(1)))
    assert agree >= 0.98, f"{kind}: top-1 agrees with torch on {agree:.1%}"
    sat = slice(len(xs) - 16, None)
    assert np.mean(t[sat].argmax(1) == gold.logits[sat].argmax(1)) >= 0.98


def qonnx_int(path, x_int: np.ndarray) -> dict[str, np.ndarray]:
    """execute_onnx on model_int.onnx (whole batch); every tensor of the execution context."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    m = ModelWrapper(str(path)).transform(ChangeBatchSize(len(x_int))).transform(InferShapes())
    return execute_onnx(m, {"global_in": x_int.astype(np.float32)}, return_full_exec_context=True)


def test_raw_brevitas_export_warns_on_compile_and_fails_the_audit(exported, tmp_path, capsys):
    kind, net, x, targets, d, res = exported
    assert main(["compile", str(d / "raw.onnx"), "--out", str(tmp_path / "raw")]) == 0
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("warning:")]
    assert len(err) == 1 and "a2qflow.export_qonnx" in err[0] and "not exported by a2qflow" in err[0]
    own = ",".join(f"{k}={v}" for k, v in targets.items())  # raw files name layers after their weights
    assert main(["audit", str(d / "raw.onnx"), "--acc-bits", own]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["audit", str(d / "model.onnx"), "--json", str(tmp_path / "a.json")]) == 0
    assert main(["compile", str(d / "model.onnx"), "--out", str(tmp_path / "ok")]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_export_errors_name_the_layer(tmp_path):
    import brevitas.nn as qnn
    from torch import nn

    net, x, _ = build("mlp", n=8)
    with pytest.raises(A2QFlowError, match="example_input is missing"):
        a2qflow.export_qonnx(net, None, tmp_path / "m.onnx")
    with pytest.raises(A2QFlowError, match=r"acc_bits names \['nope'\]"):
        a2qflow.export_qonnx(net, x, tmp_path / "m.onnx", acc_bits={"nope": 12})
    float_net = nn.Sequential(qnn.QuantIdentity(return_quant_tensor=True), nn.Linear(20, 3))
    with pytest.raises(A2QFlowError, match=r"layer '1' \(Linear\) is a float torch layer"):
        a2qflow.export_qonnx(float_net, x, tmp_path / "m.onnx")
    deconv = nn.Sequential(qnn.QuantIdentity(return_quant_tensor=True), qnn.QuantConvTranspose2d(3, 2, 3))
    with pytest.raises(A2QFlowError, match=r"layer '1' \(QuantConvTranspose2d\) is not supported"):
        a2qflow.export_qonnx(deconv, torch.rand(2, 3, 5, 5), tmp_path / "m.onnx")
    import brevitas.quant.float as fp

    fp8 = nn.Sequential(qnn.QuantIdentity(return_quant_tensor=True),
                        qnn.QuantLinear(20, 3, bias=False, weight_quant=fp.Fp8e4m3WeightPerTensorFloat))
    with pytest.raises(A2QFlowError, match=r"layer 1: its weight quantizer gives a FloatQuantTensor, not integers"):
        a2qflow.export_qonnx(fp8, x, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_audit_acc_bits_parsing_errors_are_one_line(exported, capsys):
    kind, net, x, targets, d, res = exported
    assert main(["audit", str(d / "model.onnx"), "--acc-bits", "fc0:12"]) == 2
    assert "error: --acc-bits 'fc0:12': expected one width" in capsys.readouterr().err
    assert main(["audit", str(d / "model.onnx"), "--acc-bits", "nope=12"]) == 2
    assert "--acc-bits names ['nope']" in capsys.readouterr().err
