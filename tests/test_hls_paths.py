"""run_hls.tcl in a folder with spaces: evaluated by a real Tcl interpreter with the Vitis commands
stubbed, the -cflags include path and the testbench's -argv files each stay one word when split as a shell
splits them (what the tools do with those strings)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from _hls_util import dense_model, write_build

from a2qflow.flows.cli import main

VITIS = ("open_project", "set_top", "add_files", "open_solution", "set_part", "create_clock", "csim_design",
         "csynth_design", "cosim_design", "export_design")


def _run_tcl(script: Path) -> list[list[str]]:
    """Source `script` in Tcl with every Vitis command (and exit) recording its arguments instead."""
    tkinter = pytest.importorskip("tkinter", reason="no Tcl interpreter in this Python")
    try:
        tcl = tkinter.Tcl()
    except tkinter.TclError as e:
        pytest.skip(f"no Tcl interpreter: {e}")
    tcl.eval("set ::calls {}")
    for cmd in (*VITIS, "exit"):
        tcl.eval(f"proc {cmd} {{args}} {{ lappend ::calls [linsert $args 0 {cmd}] }}")
    tcl.eval(f"source {{{script}}}")
    return [list(tcl.splitlist(c)) for c in tcl.splitlist(tcl.eval("set ::calls"))]


def test_paths_with_spaces_stay_one_word_in_cflags_and_argv(tmp_path, capsys):
    build = write_build(dense_model(), tmp_path / "my builds" / "run one")
    assert main(["hls", str(build)]) == 0, capsys.readouterr().err
    hls = (build / "hls").resolve()
    calls = _run_tcl(hls / "run_hls.tcl")
    adds = [c for c in calls if c[0] == "add_files"]
    assert [c[-3] for c in adds] == [str(hls / "top.cpp"), str(hls / "tb.cpp")]
    for c in adds:
        assert shlex.split(c[c.index("-cflags") + 1]) == ["-std=c++14", f"-I{hls}"]
    argv = [c[c.index("-argv") + 1] for c in calls if c[0] in ("csim_design", "cosim_design")]
    want = [str(hls / "tb_data/inputs.bin"), str(hls / "tb_data/outputs.bin"), "--expect",
            str(hls / "tb_data/expected.bin")]
    assert len(argv) == 2 and all(shlex.split(a) == want for a in argv)
