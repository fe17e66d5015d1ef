"""`a2qflow audit` as a CI gate: it reads a file through compile's checked loading, so it refuses what
compile refuses with the same one line (exit 2), and it never passes what it cannot check (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from _compiler_util import QonnxBuilder
from test_faults import hand_onnx, one_line

from a2qflow.hw.compiler.bounds import ACC_BITS_RANGE


def _meta(model) -> dict:
    return json.loads(next(p.value for p in model.metadata_props if p.key == "a2qflow"))


def _with_meta(src: Path, dst: Path, value: str) -> Path:
    m = onnx.load(str(src))
    for p in m.metadata_props:
        if p.key == "a2qflow":
            p.value = value
    onnx.save(m, str(dst))
    return dst


def _target(src: Path, dst: Path, target) -> Path:
    meta = _meta(onnx.load(str(src)))
    meta["layers"][0]["target_acc_bits"] = target
    return _with_meta(src, dst, json.dumps(meta))


def _edit_init(src: Path, dst: Path, name: str, edit) -> Path:
    m = onnx.load(str(src))
    for i in m.graph.initializer:
        if i.name == name:
            edit(i)
    onnx.save(m, str(dst))
    return dst


def _weight_bit_width(src: Path, dst: Path, value: float) -> Path:
    m = onnx.load(str(src))
    q = next(n for n in m.graph.node if n.op_type == "Quant" and n.input[0] == "g0.weight")
    for i in m.graph.initializer:
        if i.name == q.input[3]:
            i.CopyFrom(onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), i.name))
    onnx.save(m, str(dst))
    return dst


def _cyclic(src: Path, dst: Path) -> Path:
    """The MLP with its output fed back into its first ReLU: a cycle (compile refuses it; audit used to pass it)."""
    m = onnx.load(str(src))
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    m.graph.node.append(onnx.helper.make_node("Add", [relu.input[0], m.graph.output[0].name], ["loop"],
                                              name="loop_add"))
    relu.input[0] = "loop"
    onnx.save(m, str(dst))
    return dst


def _float_mlp(dst: Path) -> Path:
    """A plain float Gemm: no quantized MAC layer at all."""
    b = QonnxBuilder((12,))
    w = b.const(np.random.default_rng(0).normal(0, 1, (6, 12)), "fc.weight")
    return b.save(b.node("Gemm", [b.input, w], name="fc", transB=1), dst)


BAD_FILES = {
    "cycle": (_cyclic, ["the graph has a cycle through node(s)", "'loop_add'", "must be acyclic"]),
    "bad json": (lambda s, d: _with_meta(s, d, "{not json"), ["metadata 'a2qflow' is not the JSON", "re-export"]),
    "not an object": (lambda s, d: _with_meta(s, d, "[12, 14]"), ["(the whole value) is [12, 14]", "JSON object"]),
    "negative target": (lambda s, d: _target(s, d, -5), ["layers[0] (fc0).target_acc_bits is -5",
                                                        f"{ACC_BITS_RANGE.start}..{ACC_BITS_RANGE.stop - 1}"]),
    "huge target": (lambda s, d: _target(s, d, 10 ** 30), ["target_acc_bits is 1000000000000000000000000000000"]),
    "list target": (lambda s, d: _target(s, d, [12]), ["target_acc_bits is [12]"]),
    "bit width 1e9": (lambda s, d: _weight_bit_width(s, d, 1e9), ["node 'g0.weight_quant' (op Quant): bit width",
                                                                  "1000000000.0"]),
    "bit width NaN": (lambda s, d: _weight_bit_width(s, d, float("nan")), ["node 'g0.weight_quant'", "[nan]"]),
    "dims 2^40": (lambda s, d: _edit_init(s, d, "g0.weight", lambda i: i.dims.__setitem__(0, 2 ** 40)),
                  ["initializer 'g0.weight' declares dims [1099511627776, 12]", "holds 72", "re-export"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_audit_refuses_what_compile_refuses_with_the_same_line(case, tmp_path, cli):
    make, needles = BAD_FILES[case]
    bad = make(hand_onnx(tmp_path / "good.onnx"), tmp_path / "bad.onnx")
    rc, out, err = cli(["audit", bad, "--acc-bits", "12"], out=[])
    line = one_line(rc, err, f"{bad}:", *needles)
    assert "pass" not in out
    rc, _, err = cli(["compile", bad, "--out", tmp_path / "build"], out=[tmp_path / "build"])
    assert one_line(rc, err) == line  # one loader, one set of checks


def test_a_file_with_no_quantized_layer_fails_an_acc_bits_audit(tmp_path, cli):
    f = _float_mlp(tmp_path / "float.onnx")
    rc, out, err = cli(["audit", f, "--acc-bits", "12", "--json", tmp_path / "a.json"], out=tmp_path / "a.json")
    assert rc == 1, (out, err)
    report = json.loads((tmp_path / "a.json").read_text())
    assert not report["ok"]
    assert any("no quantized MAC layer" in v for v in report["violations"])
    assert any("layer fc: target P=12 cannot be checked" in v for v in report["violations"])
    rc, _, err = cli(["audit", f], out=[])  # nothing asked, nothing to check: fine
    assert rc == 0, err


def test_a_target_on_a_layer_that_cannot_be_checked_is_a_failure(tmp_path, cli):
    """fc0's input quantizer removed: its target cannot be checked, so the audit fails instead of skipping it."""
    src = hand_onnx(tmp_path / "good.onnx")
    m = onnx.load(str(src))
    iq = next(n for n in m.graph.node if n.op_type == "Quant" and n.input[0] == "x")
    for n in m.graph.node:
        n.input[:] = ["x" if i == iq.output[0] else i for i in n.input]
    m.graph.node.remove(iq)
    onnx.save(m, str(tmp_path / "m.onnx"))
    rc, out, err = cli(["audit", tmp_path / "m.onnx", "--json", tmp_path / "a.json"], out=tmp_path / "a.json")
    assert rc == 1, (out, err)
    r = json.loads((tmp_path / "a.json").read_text())
    assert [v.split(": ", 1)[1] for v in r["violations"]] == [
        "layer fc0: target P=12 cannot be checked: input is not quantized: the accumulator range is unbounded"]
    assert [l["ok"] for l in r["layers"]] == [False, True]


@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_audit_json_at_a_folder_or_under_a_file_is_one_line(where, tmp_path, cli):
    f = hand_onnx(tmp_path / "m.onnx")
    (tmp_path / "afile").write_text("x")
    target = tmp_path if where == "folder" else tmp_path / "afile" / "a.json"
    rc, _, err = cli(["audit", f, "--json", target], out=[])
    one_line(rc, err, f"--json {target}:", "is a folder, not a file" if where == "folder" else
             f"is under {tmp_path / 'afile'}, which is a file")


def test_a_good_file_still_passes_and_keeps_the_ops_of_the_file(tmp_path, cli):
    f = hand_onnx(tmp_path / "m.onnx")
    rc, _, err = cli(["audit", f, "--json", tmp_path / "a.json"], out=tmp_path / "a.json")
    assert rc == 0, err
    r = json.loads((tmp_path / "a.json").read_text())
    assert r["ok"] and [(l["name"], l["op"], l["ok"]) for l in r["layers"]] == [("fc0", "Gemm", True),
                                                                                  ("fc1", "Gemm", True)]
