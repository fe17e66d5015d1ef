"""Sweep: the naive N=M points really fit P under the data-type bound, A2Q points are built within P, a 5-width
sweep writes the points JSON and both kinds of Pareto plot, and a re-run resumes instead of retraining."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from a2qflow.flows.cli import main
from a2qflow.flows.config import load_config, parse_config
from a2qflow.flows.pareto import pareto_front
from a2qflow.flows.plots import pareto_series, plot_pareto, tool_labels
from a2qflow.flows.results import RunRecord, SweepSummary
from a2qflow.flows.sweep import dot_lengths, make_points, naive_bits, run_sweep
from a2qflow.hw.compiler.bounds import acc_bits_datatype
from a2qflow.hw.compiler.ir import IntType
from a2qflow.hw.errors import A2QFlowError

ROOT = Path(__file__).resolve().parents[1]


def _tiny_config(tmp_path: Path, **train) -> Path:
    d = yaml.safe_load((ROOT / "flows/configs/digits_mlp.yaml").read_text())
    d["model"]["hidden"] = [16]
    d["train"].update(epochs=2, **train)
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_dot_lengths_follow_the_model_structure():
    mlp = load_config(ROOT / "flows/configs/digits_mlp.yaml")
    assert dot_lengths(mlp) == {"fc0": 64, "fc1": 32, "fc2": 32}
    cnn = parse_config({"name": "c", "model": {"kind": "cnn", "conv_channels": [8, 16], "hidden": [32]}}, "t")
    # conv0: 1*3*3, conv1: 8*3*3, fc0: 16 channels * 2*2 after two 2x2 pools of 8x8, fc1: 32
    assert dot_lengths(cnn) == {"conv0": 9, "conv1": 72, "fc0": 64, "fc1": 32}


@pytest.mark.parametrize("P", [11, 12, 14, 16, 20])
def test_naive_bits_is_the_largest_n_equal_m_whose_datatype_bound_fits(P):
    cfg = load_config(ROOT / "flows/configs/digits_mlp.yaml")
    ks = dot_lengths(cfg)
    n = naive_bits(cfg, P)

    def fits(b):
        return all(acc_bits_datatype(k, IntType(b, False), IntType(b, True)) <= P for k in ks.values())

    assert n is not None and n >= 2 and fits(n) and not fits(n + 1)


def test_naive_bits_none_when_even_two_bits_overflow():
    cfg = load_config(ROOT / "flows/configs/digits_mlp.yaml")
    assert naive_bits(cfg, 10) is None  # K=64 with 2-bit x and w: 64 * 3 * 2 needs 11 bits by the data-type bound
    pts = make_points(cfg, [10], methods=["naive"])
    assert pts[0].config is None and "no N = M >= 2 fits P=10" in pts[0].reason


def test_make_points_configs():
    cfg = load_config(ROOT / "flows/configs/digits_mlp.yaml")
    pts = make_points(cfg, [12, 16], weight_bits=[4, 8], methods=["a2q", "naive"], epochs=3)
    assert [p.name for p in pts] == ["a2q-W4-P12", "a2q-W4-P16", "a2q-W8-P12", "a2q-W8-P16", "naive-P12",
                                     "naive-P16"]
    a = pts[2].config["quant"]
    assert (a["weight_quant"], a["weight_bits"], a["acc_bits"]) == ("a2q", 8, 12)
    nq = pts[-1].config["quant"]
    assert nq["weight_quant"] == "unconstrained" and nq["weight_bits"] == nq["input_bits"] == nq["act_bits"]
    assert all(p.config["train"]["epochs"] == 3 for p in pts)
    # the config's float-twin recipe (auto + float_reference) holds for every point: each trains its own twin
    assert [p.config["train"]["float_reference"] for p in pts] == [True] * 6
    scratch = cfg.model_copy(update={"train": cfg.train.model_copy(update={"recipe": "scratch"})})
    assert [p.config["train"]["float_reference"] for p in make_points(scratch, [12, 16], methods=["a2q"])] == \
        [True, False]  # scratch training: one float twin, for the reference line
    with pytest.raises(A2QFlowError, match="--methods a3q: unknown; choose from a2q, a2q\\+, naive"):
        make_points(cfg, [10], methods=["a3q"])


def test_unrolled_points_of_a_cnn_unroll_its_convolutions_unless_the_config_pins_them():
    """hw.architecture: unrolled leaves convolutions folded, so the sweep's unrolled point names every conv: the
    iso-accuracy comparison of a CNN is of the whole constant-weight datapath; the plan really unrolls them."""
    from a2qflow.hw.compiler.folding import layer_architecture

    cfg = load_config(ROOT / "flows/configs/mnist5k_lenet_small.yaml")
    pts = make_points(cfg, [12], methods=["a2q+", "qat32"], architectures=["folded", "unrolled"], qat32_bits=[4])
    layers = {p.name: p.config["hw"]["layers"] for p in pts}
    assert layers == {"a2q+-W4-P12": {}, "qat32-W4": {},
                      "a2q+-W4-P12-unrolled": {"conv0": {"architecture": "unrolled"},
                                               "conv1": {"architecture": "unrolled"}},
                      "qat32-W4-unrolled": {"conv0": {"architecture": "unrolled"},
                                            "conv1": {"architecture": "unrolled"}}}
    point = parse_config(pts[2].config, "point")
    arch = point.hw.architecture_config()
    assert layer_architecture("conv1", "conv", point.hw.folding, arch) == "unrolled"
    # a conv the config pins (its own architecture, or a folding override) keeps its setting
    d = cfg.model_dump(mode="json")
    d["hw"]["layers"] = {"conv0": {"architecture": "folded"}}
    d["hw"]["folding"]["layers"] = {"conv1": {"simd": 5, "pe": 4}}
    pinned = make_points(parse_config(d, "pinned"), [12], methods=["a2q+"], architectures=["unrolled"])
    assert pinned[0].config["hw"]["layers"] == {"conv0": {"architecture": "folded"}}


def test_pareto_front_keeps_only_non_dominated_points():
    pts = [(10, 0.5), (12, 0.9), (11, 0.4), (14, 0.85), (16, 0.95), (12, 0.7)]
    assert pareto_front(pts) == [(10, 0.5), (12, 0.9), (16, 0.95)]


def test_lut_pareto_plot_from_points(tmp_path):
    pts = [{"method": m, "luts": l, "accuracy": a} for m, l, a in
           [("a2q", 900, 0.9), ("a2q", 1000, 0.93), ("naive", 950, 0.5), ("a2q+", 880, 0.92)]]
    p = plot_pareto(pts, "luts", "LUTs", tmp_path / "l.png", 0.95, "test")
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_pareto_series_keep_methods_and_architectures_apart_and_include_the_qat32_points(tmp_path):
    """A folded and an unrolled design are different hardware (one front would hide one of them), and the qat32
    points are what the A2Q points are compared against: both must be in the plots."""
    pts = [{"method": "a2q+", "architecture": "folded", "luts": 10, "accuracy": 0.9},
           {"method": "a2q+", "architecture": "unrolled", "luts": 100, "accuracy": 0.9},
           {"method": "qat32", "luts": 20, "accuracy": 0.91},  # no architecture key (older sweep.json): folded
           {"method": "a2q", "architecture": "folded", "luts": None, "accuracy": 0.5}]  # not synthesised
    assert pareto_series(pts, "luts") == {("a2q+", "folded"): [(10, 90.0)], ("a2q+", "unrolled"): [(100, 90.0)],
                                          ("qat32", "folded"): [(20, 91.0)]}
    assert plot_pareto(pts, "luts", "LUTs", tmp_path / "l.png", 0.95, "test").read_bytes()[:4] == b"\x89PNG"
    tool = "yosys synth_xilinx"
    assert tool_labels([tool, f"{tool}, unrolled layers as sums of channel-group runs", None, "vivado"]) == [
        "vivado", f"{tool}, unrolled layers as sums of channel-group runs"]


def test_cli_rejects_bad_lists(tmp_path, capsys):
    cfg = _tiny_config(tmp_path)
    assert main(["sweep", str(cfg), "--acc-bits", "10,x", "--out", str(tmp_path / "s")]) == 2
    assert "--acc-bits '10,x': expected comma-separated integers" in capsys.readouterr().err
    assert main(["sweep", str(cfg), "--acc-bits", "10", "--stages", "trian", "--out", str(tmp_path / "s")]) == 2
    assert "--stages trian: unknown stage" in capsys.readouterr().err


@pytest.mark.slow
def test_five_width_sweep_writes_points_and_pareto_plots_and_resumes(tmp_path):
    cfg = _tiny_config(tmp_path)
    out = tmp_path / "sweep"
    widths = [10, 12, 14, 16, 20]
    s = run_sweep(cfg, out, widths, methods=["a2q", "a2q+", "naive"], stages=["compile"], jobs=2, progress=False)
    assert len(s["points"]) == 15
    status = {p["name"]: p["status"] for p in s["points"]}
    assert status.pop("naive-P10") == "infeasible"  # 2-bit x and w already need 11 bits at K=64
    assert set(status.values()) == {"ok"}, [(p["name"], p["reason"]) for p in s["points"] if p["status"] != "ok"]
    on_disk = json.loads((out / "sweep.json").read_text())
    assert [p["name"] for p in on_disk["points"]] == [p["name"] for p in s["points"]]
    assert s["float_accuracy"] is not None and 0 < s["float_accuracy"] <= 1
    for p in s["points"]:
        if p["status"] == "infeasible":
            continue
        assert 0 <= p["accuracy"] <= 1 and p["accuracy_source"] == "PyTorch + Brevitas"
        assert p["acc_bits_built"] <= p["target_acc_bits"], p  # every design fits the width it was built for
        plan = json.loads((Path(p["run"]) / "build/plan.json").read_text())
        assert [l["K"] for l in plan["layers"]] == list(dot_lengths(load_config(cfg)).values())
        if p["method"] == "naive":
            assert p["acc_bits_datatype"] <= p["target_acc_bits"]  # safe for ANY weights at N = M
            assert all(l["weight_bits"] == l["input_bits"] == p["weight_bits"] for l in plan["layers"])
    for png in ("pareto_acc_bits.png",):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "pareto_luts.png" not in s["plots"]  # no synth in this sweep: no LUT figure is invented
    md = (out / "sweep.md").read_text()
    assert "naive-P10" in md and "a2q+-W4-P20" in md
    # a second run finds every stage up to date
    s2 = run_sweep(cfg, out, widths, methods=["a2q", "a2q+", "naive"], stages=["compile"], jobs=1, progress=False)
    assert all(set(p["stages"].values()) == {"skipped"} for p in s2["points"] if p["status"] == "ok")
    assert [p["accuracy"] for p in s2["points"]] == [p["accuracy"] for p in s["points"]]


@pytest.mark.slow
def test_a_moved_sweep_folder_still_loads_and_resumes(tmp_path):
    """Every result file stores its paths relative to its own folder: a sweep moved to another place reads back
    naming its new folders, and a re-run there finds every stage up to date (nothing rewritten, nothing redone)."""
    cfg = _tiny_config(tmp_path, float_reference=False)
    kw = dict(acc_bits=[12], methods=["a2q"], stages=["compile", "report"], epochs=1, progress=False)
    first = run_sweep(cfg, tmp_path / "first", **kw)
    moved = tmp_path / "disk2" / "moved"
    shutil.move(tmp_path / "first", moved)
    s = SweepSummary.read(moved / "sweep.json")
    assert [Path(p.run) for p in s.points] == [moved / "points" / p.name for p in first.points]
    point = Path(s.points[0].run)
    assert Path(RunRecord.read(point / "run.json").run) == point
    report = json.loads((point / "report" / "report.json").read_text())
    assert (report["build"], report["train"]) == ("../build", "../train")  # relative to report.json's folder
    for f in moved.rglob("*.json"):  # no file names the first folder or a stage's scratch folder
        assert str(tmp_path / "first") not in f.read_text() and "/.tmp/" not in f.read_text(), f
    again = run_sweep(cfg, moved, **kw)
    assert set(again.points[0].stages.values()) == {"skipped"}
    assert again.points[0].accuracy == first.points[0].accuracy and again.points[0].run == str(point)


def test_prune_synthesises_only_the_estimated_front(tmp_path):
    """--prune: the first pass runs without synth; only points on the (estimated LUTs, accuracy) front get synth."""
    from a2qflow.flows.sweep import run_pruned

    cfg = load_config(ROOT / "flows/configs/digits_mlp.yaml")
    points = make_points(cfg, [10, 12, 14], methods=["a2q"])
    figures = {"a2q-W4-P10": (1000, 0.80), "a2q-W4-P12": (1200, 0.90), "a2q-W4-P14": (1300, 0.85)}
    calls = []

    class FakeExecutor:
        name = "local"

        def run(self, tasks, progress):
            for t in tasks:
                calls.append((t.name, tuple(t.stages)))
                est, acc = figures[t.name]
                yield t, t.meta.model_copy(update={"status": "ok", "luts_estimate": est, "accuracy": acc,
                                                   "luts": est + 7 if "synth" in t.stages else None})

    res = run_pruned(points, tmp_path, ["csim", "synth"], FakeExecutor(), progress=False)
    assert [c for c in calls if "synth" not in c[1]] == [(p.name, ("csim", "compile")) for p in points]
    assert sorted(c[0] for c in calls if "synth" in c[1]) == ["a2q-W4-P10", "a2q-W4-P12"]  # P14: dominated
    assert res["a2q-W4-P14"].synth_pruned and res["a2q-W4-P14"].luts is None
    assert not res["a2q-W4-P12"].synth_pruned and res["a2q-W4-P12"].luts == 1207
