"""One content key for every cache (hw/cache_key.py): it changes when an input, a parameter, a template or the
producing code changes (the generator's imports included), stays the same otherwise, and the caches built on it
(BUILD/rtl, Verilator simulators, C-sim testbenches, yosys channel groups) still hit when nothing changed."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest
from _hls_util import dense_model
from _hls_util import write_build as write_hls_build
from _rtl_util import dense_chain
from _rtl_util import write_build as write_rtl_build

from a2qflow.hw import cache_key
from a2qflow.hw.cache_key import code_files, content_key
from a2qflow.hw.errors import A2QFlowError


def _edited_copy(monkeypatch, tmp_path: Path, module: str, extra: str = "\n# edited\n") -> Path:
    """Make `module`'s source file a temp copy with `extra` appended, as an edit to the installed code would."""
    real = cache_key._module_file
    copy = tmp_path / "code" / (module + ".py")
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(real(module).read_text() + extra)
    monkeypatch.setattr(cache_key, "_module_file", lambda name: copy if name == module else real(name))
    return copy


def test_the_key_depends_on_content_and_parameters_not_on_location_or_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "x.v").write_text("module x; endmodule\n")
    key = content_key(files=[a / "x.v"], params={"flags": ["-O2"], "tool": "g++ 12"})
    assert key == content_key(files=[b / "x.v"], params={"tool": "g++ 12", "flags": ["-O2"]})
    assert len(key) == 64 and len(content_key(files=[a / "x.v"], length=16)) == 16
    assert key != content_key(files=[a / "x.v"], params={"flags": ["-O3"], "tool": "g++ 12"})
    (b / "x.v").write_text("module x; wire w; endmodule\n")
    assert key != content_key(files=[b / "x.v"], params={"flags": ["-O2"], "tool": "g++ 12"})
    # in-memory inputs are keyed by name and content too
    assert content_key(texts={"x.v": "a"}) != content_key(texts={"y.v": "a"})
    with pytest.raises(A2QFlowError, match=r"missing\.v: input file missing"):
        content_key(files=[tmp_path / "missing.v"])
    with pytest.raises(A2QFlowError, match=r"'a2qflow\.hw\.nope' is not an a2qflow module"):
        content_key(code_modules=["a2qflow.hw.nope"])


def test_code_modules_follow_imports_at_any_depth():
    rtl = code_files(["a2qflow.hw.rtl.generate"])
    # generate imports unrolled, which imports the compiler's csd; plan is imported by generate
    assert {"a2qflow.hw.rtl.generate", "a2qflow.hw.rtl.unrolled", "a2qflow.hw.compiler.csd",
            "a2qflow.hw.compiler.plan"} <= set(rtl)
    assert not any(m.startswith(("a2qflow.hw.hls", "a2qflow.flows", "a2qflow.training")) for m in rtl)
    assert list(code_files(["a2qflow.hw.rtl.sim"], follow_imports=False)) == ["a2qflow.hw.rtl.sim"]


def test_an_edit_to_a_module_the_generator_imports_changes_the_key(tmp_path, monkeypatch):
    before = content_key(code_modules=["a2qflow.hw.rtl.generate"])
    assert before == content_key(code_modules=["a2qflow.hw.rtl.generate"])
    _edited_copy(monkeypatch, tmp_path, "a2qflow.hw.compiler.csd")  # two imports away from the generator
    assert content_key(code_modules=["a2qflow.hw.rtl.generate"]) != before
    # ... but not the key of code that does not import it
    assert content_key(code_modules=["a2qflow.hw.synth.cells"]) == content_key(
        code_modules=["a2qflow.hw.synth.cells"])


def test_generated_rtl_is_reused_until_the_generator_or_a_template_changes(tmp_path, monkeypatch):
    from a2qflow.hw.rtl import generate

    write_rtl_build(tmp_path, dense_chain(seed=3))
    rtl = generate.ensure_generated(tmp_path)
    manifest = rtl / "manifest.json"
    first = json.loads(manifest.read_text())["inputs_sha256"]
    stamp = manifest.stat().st_mtime_ns
    assert generate.ensure_generated(tmp_path) == rtl and manifest.stat().st_mtime_ns == stamp  # cache hit

    # the generator's own code changed (outside the pipeline): the Verilog is regenerated, not reused
    _edited_copy(monkeypatch, tmp_path, "a2qflow.hw.rtl.unrolled")
    generate.ensure_generated(tmp_path)
    second = json.loads(manifest.read_text())["inputs_sha256"]
    assert second != first and manifest.stat().st_mtime_ns != stamp
    monkeypatch.undo()

    # a template changed: a copy of the Verilog library with one comment added to the top-level template
    lib = tmp_path / "verilog"
    shutil.copytree(Path(str(resources.files("a2qflow.hw.rtl.verilog"))), lib)
    (lib / "a2q_top.v.j2").write_text((lib / "a2q_top.v.j2").read_text() + "// edited\n")
    real_files = resources.files
    monkeypatch.setattr(generate.resources, "files",
                        lambda pkg: lib if pkg == "a2qflow.hw.rtl.verilog" else real_files(pkg))
    assert generate.input_digest(tmp_path) not in (first, second)


def test_verilator_and_csim_builds_hit_their_cache_and_rebuild_after_a_code_change(tmp_path, monkeypatch):
    from a2qflow.hw.hls.csim import compile_testbench
    from a2qflow.hw.hls.generate import generate as generate_hls
    from a2qflow.hw.rtl import sim

    monkeypatch.setenv("A2QFLOW_CACHE", str(tmp_path / "cache"))
    write_rtl_build(tmp_path / "r", dense_chain(seed=3))
    rtl = sim.ensure_generated(tmp_path / "r")
    exe = sim.build_simulator(rtl)
    assert sim.build_simulator(rtl) == exe  # same sources: no second build
    _edited_copy(monkeypatch, tmp_path, "a2qflow.hw.rtl.sim")
    assert sim._simulator_key(rtl, sim._sources(rtl)[1], sim.library_text("tb_main.cpp.j2")) != exe.parent.name
    monkeypatch.undo()

    monkeypatch.setenv("A2QFLOW_CACHE", str(tmp_path / "cache"))
    hls = generate_hls(write_hls_build(dense_model(seed=9), tmp_path / "h"))
    exe, _, compiled = compile_testbench(hls, monitor=False)
    assert compile_testbench(hls, monitor=False) == (exe, 0.0, False)  # cache hit
    _edited_copy(monkeypatch, tmp_path, "a2qflow.hw.hls.csim")  # the module that runs the compiler
    again, _, compiled = compile_testbench(hls, monitor=False)
    assert compiled and again != exe


def test_yosys_group_counts_are_reused_until_the_counting_code_changes(tmp_path, monkeypatch):
    from a2qflow.hw.synth import split
    from a2qflow.hw.synth.cells import Flow

    monkeypatch.setenv("A2QFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(split, "tool_version", lambda name: "Yosys test")
    runs = []

    def fake_yosys(tool, args, cwd, log_name, status):
        runs.append(args)
        (Path(cwd) / "g0.stats.json").write_text(json.dumps({"modules": {"\\g0": {"num_cells_by_type": {"LUT4": 3}}}}))
        return type("Run", (), {"seconds": 1.0})()

    monkeypatch.setattr(split, "run_tool", fake_yosys)
    text = "module g0(input a, output b); assign b = a; endmodule\n"
    work = tmp_path / "work"
    work.mkdir()
    first = split.synth_group(text, "g0", Flow("xc7", "lut-only"), work)
    assert first["cached"] is False and len(runs) == 1
    again = split.synth_group(text, "g0", Flow("xc7", "lut-only"), work)
    assert again["cached"] is True and again["cells"] == first["cells"] and len(runs) == 1
    assert split.synth_group(text, "g0", Flow("xc7", "dsp"), work)["cached"] is False  # another yosys command
    _edited_copy(monkeypatch, tmp_path, "a2qflow.hw.synth.cells")
    assert split.synth_group(text, "g0", Flow("xc7", "lut-only"), work)["cached"] is False and len(runs) == 3
