"""Typed flow results (flows/results.py): the JSON files the sweep, the search and the pipeline wrote before keep
loading through the models (the files are a public interface), new files store paths relative to their own folder,
and a moved folder's results still name its own folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from a2qflow.flows.results import (
    PATHS_RELATIVE,
    IsoAccuracy,
    PointResult,
    RunRecord,
    SearchCandidate,
    SearchSummary,
    StageRecord,
    SweepSummary,
)
from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import relative_path, resolve_path
from a2qflow.hw.results import CsimSummary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SWEEP_FILES = sorted(RESULTS.glob("*/sweep.json"))
BENCH_POINT_FILES = [RESULTS / "sweep_digits.json", *sorted(RESULTS.glob("iso_*.json"))]


def _keeps(new, raw) -> bool:
    """Every key and value stored in `raw` reads back unchanged in `new` (keys added since may be there too)."""
    if isinstance(raw, dict):
        return isinstance(new, dict) and all(k in new and _keeps(new[k], v) for k, v in raw.items())
    if isinstance(raw, list):
        return isinstance(new, list) and len(new) == len(raw) and all(map(_keeps, new, raw))
    return new == raw


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.parent.name)
def test_sweep_json_loads_with_its_paths_as_written_or_relative_to_it(path):
    raw = json.loads(path.read_text())
    s = SweepSummary.read(path)
    assert [p.name for p in s.points] == [p["name"] for p in raw["points"]] and s.points
    # no `paths` key (earlier versions): read as it stands; "relative": against the file's own folder
    want = [p["run"] if raw.get("paths") != PATHS_RELATIVE else str(resolve_path(p["run"], path.parent))
            for p in raw["points"]]
    assert [p.run for p in s.points] == want
    assert [p.luts for p in s.points] == [p.get("luts") for p in raw["points"]]
    assert _keeps(s.to_json(), {k: v for k, v in raw.items() if k not in ("points", "iso_accuracy", "paths")})
    for arch, iso in raw.get("iso_accuracy", {}).items():
        assert _keeps(s.iso_accuracy[arch].to_json(), iso)  # same keys, same values


def test_search_json_written_by_an_earlier_version_loads():
    path = RESULTS / "search_digits" / "search.json"
    raw = json.loads(path.read_text())
    s = SearchSummary.read(path)
    assert s.chosen == raw["chosen"] and s.chosen_name == raw["chosen_name"] and s.luts == raw["luts"]
    assert [c.to_json() for c in s.candidates] == [c | {"dsp_priced": c.get("dsp_priced")}
                                                    for c in raw["candidates"]]
    assert [r.to_json() for r in s.sensitivity] == raw["sensitivity"]


@pytest.mark.parametrize("path", BENCH_POINT_FILES, ids=lambda p: p.stem)
def test_benchmark_point_rows_and_iso_figures_load_through_the_models(path):
    raw = json.loads(path.read_text())
    points = [PointResult.model_validate(p) for p in raw["points"]]
    assert [p.name for p in points] == [p["name"] for p in raw["points"]]
    for p, r in zip(points, raw["points"]):
        assert {k: v for k, v in p.to_json().items() if k in r} == r  # every stored key read back unchanged
    for arch, iso in (raw.get("iso_accuracy") or {}).items():
        assert _keeps(IsoAccuracy.model_validate(iso).to_json(), iso)


def test_search_benchmark_candidates_load():
    raw = json.loads((RESULTS / "search_digits.json").read_text())
    cands = [SearchCandidate.model_validate(c) for c in raw["candidates"]]
    assert [c.luts for c in cands] == [c["luts"] for c in raw["candidates"]]


def test_a_written_sweep_stores_paths_relative_to_its_folder_and_a_moved_copy_resolves_to_itself(tmp_path):
    first = tmp_path / "a" / "sweep"
    p = PointResult(name="a2q-W4-P12", method="a2q", target_acc_bits=12, status="ok",
                    run=str(first / "points" / "a2q-W4-P12"))
    SweepSummary(name="t", points=[p]).write(first / "sweep.json")
    raw = json.loads((first / "sweep.json").read_text())
    assert raw["points"][0]["run"] == "points/a2q-W4-P12" and raw["paths"] == PATHS_RELATIVE
    assert SweepSummary.read(first / "sweep.json").points[0].run == str(first / "points" / "a2q-W4-P12")
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(first, moved)
    assert SweepSummary.read(moved / "sweep.json").points[0].run == str(moved / "points" / "a2q-W4-P12")


def test_run_json_names_its_own_folder_and_keeps_every_stage_record(tmp_path):
    rec = RunRecord(run=str(tmp_path / "run"), stages=[
        StageRecord(name="train", status="done", seconds=1.5, input_hash="ab", summary={"test_accuracy": 0.9}),
        StageRecord(name="compile", status="not run")])
    rec.write(tmp_path / "run" / "run.json")
    raw = json.loads((tmp_path / "run" / "run.json").read_text())
    assert raw["run"] == "." and [r["status"] for r in raw["stages"]] == ["done", "not run"]
    assert raw["stages"][0] == {"name": "train", "status": "done", "seconds": 1.5, "input_hash": "ab", "reason": "",
                                "summary": {"test_accuracy": 0.9}}
    shutil.move(tmp_path / "run", tmp_path / "moved")
    back = RunRecord.read(tmp_path / "moved" / "run.json")
    assert Path(back.run) == tmp_path / "moved" and back.stages[0].summary == {"test_accuracy": 0.9}


def test_a_bad_field_is_one_line_naming_the_file_and_the_field(tmp_path):
    bad = tmp_path / "sweep.json"
    bad.write_text(json.dumps({"points": [{"name": "x", "method": "a2q"}]}))  # no status
    with pytest.raises(A2QFlowError, match=r"sweep\.json: points\.0\.status: Field required") as e:
        SweepSummary.read(bad)
    assert "\n" not in str(e.value) and str(e.value).endswith("re-run the command that writes it")
    bad.write_text("{")
    with pytest.raises(A2QFlowError, match="not valid JSON.*re-run the command that writes it"):
        SweepSummary.read(bad)
    assert SweepSummary.read(tmp_path / "absent.json") is None


def test_stage_and_flow_files_share_one_reader_and_name_what_to_re_run(tmp_path):
    """hw stage results and flow files read through StageResult.read: the same one-line errors, naming the stage
    (csim.json) or the command (sweep.json) that writes the file."""
    bad = tmp_path / "csim.json"
    bad.write_text(json.dumps({"model": "m", "policy": "p", "samples": "many"}))
    with pytest.raises(A2QFlowError, match=r"csim\.json: samples: .*; re-run the stage that writes it$"):
        CsimSummary.read(bad)
    bad.write_text("[1,")
    with pytest.raises(A2QFlowError, match=r"csim\.json: not valid JSON .*re-run the stage that writes it$"):
        CsimSummary.read(bad)


names = st.text(alphabet="abcXYZ019-_+", min_size=1, max_size=8)


@given(st.lists(names, min_size=0, max_size=3), st.lists(names, min_size=1, max_size=3))
def test_relative_path_and_resolve_path_are_inverse(base_parts, sub_parts):
    base = Path("/srv", *base_parts)
    for target in (base.joinpath(*sub_parts), Path("/other", *sub_parts)):
        rel = relative_path(target, base)
        assert not Path(rel).is_absolute()
        assert resolve_path(rel, base) == target
    assert resolve_path("/abs/x", base) == Path("/abs/x")  # earlier files' absolute paths stay as written
