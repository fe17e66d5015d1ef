"""Stage framework: skip when inputs are unchanged, redo from a stage, failures and interrupts leave no partial
folder and keep finished stages (generic tests with fake stage functions; the real flow is wired in stages.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from a2qflow.flows.pipeline import STAMP, Pipeline, Stage, read_stamp
from a2qflow.hw.errors import A2QFlowError


def _fake_stages(calls: list[str], params_key: str = "x", fail: set[str] | None = None) -> list[Stage]:
    fail = fail or set()

    def make(name: str, content):
        def func(ctx):
            calls.append(name)
            if name in fail:
                (ctx.out).mkdir(parents=True)
                (ctx.out / "partial.txt").write_text("half")
                raise RuntimeError(f"{name} broke")
            ctx.out.mkdir(parents=True)
            up = "".join((p / "data.txt").read_text() for p in ctx.upstream.values())
            (ctx.out / "data.txt").write_text(up + content(ctx))
            return {"len": len(up)}
        return func

    return [
        Stage("a", "a", make("a", lambda ctx: str(ctx.params[params_key])), inputs=lambda p: p[params_key]),
        Stage("b", "b", make("b", lambda ctx: "b"), deps=["a"]),
        Stage("c", "b/c", make("c", lambda ctx: "c"), deps=["b"]),
        Stage("d", "d", make("d", lambda ctx: "d"), deps=["a"]),
    ]


def test_second_run_skips_everything_and_outputs_are_stamped(tmp_path):
    calls: list[str] = []
    p = Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1})
    r = p.run(progress=False)
    assert calls == ["a", "b", "c", "d"] and r.ran() == ["a", "b", "c", "d"]
    assert (tmp_path / "run/b/c/data.txt").read_text() == "1bc"
    for s in ("a", "b", "b/c", "d"):
        st = read_stamp(tmp_path / "run" / s)
        assert st and len(st["input_hash"]) == 64
    calls.clear()
    r = Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False)
    assert calls == [] and r.skipped() == ["a", "b", "c", "d"]
    run_json = json.loads((tmp_path / "run/run.json").read_text())
    assert [s["status"] for s in run_json["stages"]] == ["skipped"] * 4
    assert not (tmp_path / "run/.tmp").exists()


def test_changed_config_reruns_the_stage_and_everything_downstream(tmp_path):
    calls: list[str] = []
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False)
    calls.clear()
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 2}).run(progress=False)
    assert calls == ["a", "b", "c", "d"]
    assert (tmp_path / "run/b/c/data.txt").read_text() == "2bc"


def test_changed_input_file_reruns_only_its_stage_and_dependants(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("one")
    calls: list[str] = []

    def stages():
        s = _fake_stages(calls)
        s[3] = Stage("d", "d", lambda ctx: (calls.append("d"), ctx.out.mkdir(), (ctx.out / "data.txt").write_text(
            f.read_text()))[-1] and None, deps=["a"], files=lambda p, up: [f])
        return s

    Pipeline(stages(), tmp_path / "run", {"x": 1}).run(progress=False)
    calls.clear()
    f.write_text("two")
    Pipeline(stages(), tmp_path / "run", {"x": 1}).run(progress=False)
    assert calls == ["d"]
    assert (tmp_path / "run/d/data.txt").read_text() == "two"


def test_redo_from_reruns_that_stage_and_later_ones_only(tmp_path):
    calls: list[str] = []
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False)
    calls.clear()
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False, redo_from="c")
    assert calls == ["c", "d"]


def test_rerunning_a_parent_stage_drops_nested_child_outputs_then_rebuilds_them(tmp_path):
    calls: list[str] = []
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False)
    calls.clear()
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False, redo_from="b", only=["b"])
    assert calls == ["b"]
    assert not (tmp_path / "run/b/c").exists()  # invalid once b changed; not left stale
    calls.clear()
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False)
    assert calls == ["c"]  # b's outputs are identical, so d (which only needs a) stays


def test_only_selects_dependencies_in_order(tmp_path):
    calls: list[str] = []
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False, only=["c"])
    assert calls == ["a", "b", "c"]
    assert not (tmp_path / "run/d").exists()


def test_unknown_stage_names_are_one_line_errors(tmp_path):
    p = Pipeline(_fake_stages([]), tmp_path / "run", {"x": 1})
    with pytest.raises(A2QFlowError, match=r"--from zz: unknown stage; stages are a, b, c, d"):
        p.run(progress=False, redo_from="zz")
    with pytest.raises(A2QFlowError, match=r"--stages q: unknown stage"):
        p.run(progress=False, only=["q"])


def test_failed_stage_keeps_earlier_stages_removes_partial_output_and_says_how_to_resume(tmp_path):
    calls: list[str] = []
    p = Pipeline(_fake_stages(calls, fail={"b"}), tmp_path / "run", {"x": 1}, command_hint="run `a2qflow run c.yaml`")
    with pytest.raises(A2QFlowError) as e:
        p.run(progress=False)
    msg = str(e.value)
    assert "stage b failed: RuntimeError: b broke" in msg and "resume from b" in msg and "a2qflow run c.yaml" in msg
    assert "\n" not in msg
    assert (tmp_path / "run/a/data.txt").exists() and read_stamp(tmp_path / "run/a")
    assert not (tmp_path / "run/b").exists()
    assert not list((tmp_path / "run/.tmp").glob("*"))
    assert "RuntimeError: b broke" in (tmp_path / "run/logs/b.log").read_text()
    statuses = {s["name"]: s["status"] for s in json.loads((tmp_path / "run/run.json").read_text())["stages"]}
    assert statuses == {"a": "done", "b": "failed", "c": "not run", "d": "not run"}
    calls.clear()
    Pipeline(_fake_stages(calls), tmp_path / "run", {"x": 1}).run(progress=False)
    assert calls == ["b", "c", "d"]
    assert not (tmp_path / "run/logs/b.log").exists()


def test_disabled_stage_is_reported_and_its_dependants_do_not_run(tmp_path):
    calls: list[str] = []
    st = _fake_stages(calls)
    st[1].enabled = lambda params: "tool missing"
    r = Pipeline(st, tmp_path / "run", {"x": 1}).run(progress=False)
    assert calls == ["a", "d"]
    assert r.status("b") == "disabled" and r.status("c") == "not run"


def test_keyboard_interrupt_cleans_temp_and_keeps_finished(tmp_path):
    calls: list[str] = []
    st = _fake_stages(calls)

    def interrupted(ctx):
        ctx.out.mkdir()
        (ctx.out / "half.txt").write_text("x")
        raise KeyboardInterrupt

    st[1].func = interrupted
    with pytest.raises(KeyboardInterrupt):
        Pipeline(st, tmp_path / "run", {"x": 1}).run(progress=False)
    assert read_stamp(tmp_path / "run/a") and not (tmp_path / "run/b").exists()
    assert not list((tmp_path / "run/.tmp").glob("*"))


_CHILD = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    # as in a terminal: a job started in the background by a non-interactive shell inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from a2qflow.flows.pipeline import Pipeline, Stage
    run, log = Path(sys.argv[1]), Path(sys.argv[2])

    def work(name, slow):
        def f(ctx):
            with open(log, "a") as fh:
                fh.write(name + "\\n")
            ctx.out.mkdir()
            for i in range(200 if slow else 1):
                (ctx.out / f"part{i}.txt").write_text("x" * 1000)
                if slow:
                    if i == 3:
                        (run / "midway").write_text("1")
                    time.sleep(0.05)
        return f

    slow = sys.argv[3] == "slow"
    Pipeline([Stage("first", "first", work("first", False)),
              Stage("second", "build", work("second", slow), deps=["first"]),
              Stage("third", "build/third", work("third", False), deps=["second"])], run).run(progress=True)
""")


def test_sigint_mid_stage_leaves_no_partial_folder_and_rerun_resumes(tmp_path):
    """A real process interrupted with SIGINT (Ctrl-C) half-way through a stage that is writing files."""
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    run, log = tmp_path / "run", tmp_path / "calls.log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, str(script), str(run), str(log), "slow"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (run / "midway").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert read_stamp(run / "first") is not None
    assert not (run / "build").exists()  # nothing half-written where the stage's output goes
    assert not list((run / ".tmp").glob("*"))
    assert log.read_text().split() == ["first", "second"]
    subprocess.run([sys.executable, str(script), str(run), str(log), "fast"], env=env, check=True,
                   capture_output=True)
    assert log.read_text().split() == ["first", "second", "second", "third"]  # first was not redone
    assert read_stamp(run / "build") and read_stamp(run / "build/third")
    assert (run / STAMP).exists() is False


@pytest.mark.slow
def test_real_flow_run_resumes_and_redoes_from_a_stage(tmp_path):
    """`a2qflow run` on a tiny config through compile: stamps, a no-op re-run, --from compile, and a changed
    hw.folding that re-compiles without re-training."""
    import yaml

    from a2qflow.flows.cli import main

    root = Path(__file__).resolve().parents[1]
    d = yaml.safe_load((root / "flows/configs/digits_mlp.yaml").read_text())
    d["model"]["hidden"] = [16]
    d["train"].update(epochs=1, float_reference=False)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(d))
    run = tmp_path / "run"
    args = ["run", str(cfg), "--out", str(run), "--stages", "compile,report", "--no-progress"]
    assert main(args) == 0
    st = {s["name"]: s["status"] for s in json.loads((run / "run.json").read_text())["stages"]}
    assert st == {"train": "done", "compile": "done", "report": "done"}
    assert (run / "build/plan.json").is_file() and (run / "report/report.md").is_file()
    t_stamp = read_stamp(run / "train")
    assert main(args) == 0
    st = {s["name"]: s["status"] for s in json.loads((run / "run.json").read_text())["stages"]}
    assert set(st.values()) == {"skipped"}
    assert main(args + ["--from", "compile"]) == 0
    st = {s["name"]: s["status"] for s in json.loads((run / "run.json").read_text())["stages"]}
    assert st == {"train": "skipped", "compile": "done", "report": "done"}
    d["hw"]["folding"] = {"default": {"simd": 4, "pe": 2}}
    cfg.write_text(yaml.safe_dump(d))
    assert main(args) == 0
    st = {s["name"]: s["status"] for s in json.loads((run / "run.json").read_text())["stages"]}
    assert st["train"] == "skipped" and st["compile"] == "done"
    assert read_stamp(run / "train") == t_stamp
    plan = json.loads((run / "build/plan.json").read_text())
    assert all(l["simd"] <= 4 and l["pe"] <= 2 for l in plan["layers"])
    # a moved run folder: its files name their own folders (relative paths), and a re-run there skips every stage
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(run, moved)
    for f in moved.rglob("*.json"):
        assert str(run) not in f.read_text(), f
    assert json.loads((moved / "run.json").read_text())["run"] == "."
    assert main(["run", str(cfg), "--out", str(moved), "--stages", "compile,report", "--no-progress"]) == 0
    st = {s["name"]: s["status"] for s in json.loads((moved / "run.json").read_text())["stages"]}
    assert set(st.values()) == {"skipped"}


def test_each_real_stage_hashes_only_the_config_it_reads():
    """A new bitstream target must not re-train or re-compile; a new folding must re-compile but not re-train."""
    from a2qflow.flows.config import load_config
    from a2qflow.flows.stages import flow_stages
    from a2qflow.hw.config import Folding

    root = Path(__file__).resolve().parents[1]
    base = load_config(root / "flows/configs/digits_mlp.yaml")
    stages = {s.name: s for s in flow_stages()}

    def inputs(cfg, name):
        return stages[name].inputs({"config": cfg, "acc_bits": None, "allow_unsafe": False})

    target = base.model_copy(update={"hw": base.hw.model_copy(update={"target": "ecp5-25k"})})
    fold = base.model_copy(update={"hw": base.hw.model_copy(update={"folding": base.hw.folding.model_copy(
        update={"layers": {"fc0": Folding(simd=2, pe=2)}})})})
    epochs = base.model_copy(update={"train": base.train.model_copy(update={"epochs": 3})})
    assert [inputs(target, n) == inputs(base, n) for n in ("train", "compile", "synth", "bitstream")] == \
        [True, True, True, False]
    assert [inputs(fold, n) == inputs(base, n) for n in ("train", "compile")] == [True, False]
    assert inputs(epochs, "train") != inputs(base, "train") and inputs(epochs, "compile") == inputs(base, "compile")


def test_output_that_is_not_a_terminal_gets_a_plain_line_per_stage_start_and_end(tmp_path):
    """`make demo > log`: a live display would show nothing until the end; plain lines appear as stages go."""
    import io
    import re

    from rich.console import Console

    buf = io.StringIO()
    calls: list[str] = []
    Pipeline(_fake_stages(calls, fail={"d"}), tmp_path / "run", {"x": 1}).run(only=["a", "b"], console=Console(
        file=buf, force_terminal=False))
    lines = buf.getvalue().splitlines()
    assert [l.split(":")[0] for l in lines] == ["stage a", "stage a", "stage b", "stage b"], lines
    assert lines[0] == "stage a: started" and re.fullmatch(r"stage a: done in \d+\.\d s", lines[1])
    buf.truncate(0), buf.seek(0)
    with pytest.raises(A2QFlowError):
        Pipeline(_fake_stages(calls, fail={"d"}), tmp_path / "run", {"x": 1}).run(console=Console(
            file=buf, force_terminal=False))
    lines = buf.getvalue().splitlines()
    assert "stage a: up to date (skipped)" in lines and "stage d: started" in lines
    assert any(re.fullmatch(r"stage d: FAILED: RuntimeError: d broke after \d+\.\d s", l) for l in lines), lines
    assert "\x1b" not in buf.getvalue()  # no terminal control codes in a log file


def test_a_simulation_that_disagrees_with_the_golden_model_fails_its_stage():
    """rtlsim / csim must not finish as "done" with mismatches (a MobileNet once did: 360 of 360), and the error
    names the first mismatch's layer, channel and sample."""
    from types import SimpleNamespace

    from a2qflow.flows.stages import _no_mismatch
    from a2qflow.hw.compiler.golden_compare import GoldenComparison, Mismatch
    from a2qflow.hw.errors import A2QFlowError

    _no_mismatch(SimpleNamespace(name="rtlsim"), GoldenComparison(backend="Verilator", n_samples=360,
                                                                   n_mismatches=0, mismatching_values=0))
    bad = GoldenComparison(backend="Verilator", n_samples=360, n_mismatches=360, mismatching_values=720,
                           first=Mismatch(sample=0, layer="fc2", channel=3, index=3, expected=5, got=-7))
    with pytest.raises(A2QFlowError, match=r"^stage rtlsim: Verilator disagrees with the golden model on 360 of 360 "
                                            r"samples \(720 values\); first at layer fc2, channel 3, sample 0: "
                                            r"expected 5, got -7; this is a backend bug"):
        _no_mismatch(SimpleNamespace(name="rtlsim"), bad)
