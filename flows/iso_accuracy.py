"""LUTs at iso-accuracy: the A2Q paper's resource metric, computed from a sweep's measured points.

The paper compares designs at equal accuracy: for each accuracy level, the cheapest A2Q design that reaches it
against the cheapest qat32 design that reaches it (sweep method `qat32`: unconstrained QAT at several M = N with
32-bit accumulators, what the paper compares against). That counts what A2Q does to the weights (small, sparse)
as well as the narrower accumulators; "up to 2.3x" in the paper is the largest such ratio at >= 99 % of float
accuracy. This module computes it per architecture (folded / unrolled) from sweep points that have both an
accuracy and a LUT count; it estimates nothing: a level without a design on both sides has no ratio.

In sweep.json each level's `baseline_point` / `baseline_luts` name the cheapest qat32 design and its LUTs (key
names kept from before "baseline" was retired as a word: scripts read them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from a2qflow.flows.results import IsoAccuracy, IsoLevel, PointResult

A2Q_METHODS = ("a2q", "a2q+")
QAT32_METHOD = "qat32"
FLOAT_FRACTION = 0.99


def _cheapest(points: Sequence[PointResult], level: float) -> PointResult | None:
    ok = [p for p in points if p.accuracy >= level]
    return min(ok, key=lambda p: p.luts) if ok else None


def iso_accuracy(points: Sequence[PointResult | dict], float_acc: float | None) -> dict[str, IsoAccuracy]:
    """Per architecture: every accuracy level reached on both sides with its cheapest designs and their LUT ratio,
    and the largest ratio at >= 99 % of float accuracy (`best`, None when no level qualifies). Rows given as dicts
    (sweep.json's) are read as PointResult first."""
    out: dict[str, IsoAccuracy] = {}
    pts = [p if isinstance(p, PointResult) else PointResult.model_validate(p) for p in points]
    usable = [p for p in pts if p.status == "ok" and p.luts and p.accuracy is not None]
    for arch in sorted({p.architecture or "folded" for p in usable}):
        mine = [p for p in usable if (p.architecture or "folded") == arch]
        a2q = [p for p in mine if p.method in A2Q_METHODS]
        base = [p for p in mine if p.method == QAT32_METHOD]
        if not a2q or not base:
            continue
        rows = []
        for level in sorted({p.accuracy for p in a2q + base}):
            ca, cb = _cheapest(a2q, level), _cheapest(base, level)
            if ca and cb:
                sites = round(cb.lut_sites / ca.lut_sites, 3) if ca.lut_sites and cb.lut_sites else None
                rows.append(IsoLevel(accuracy=level, a2q_point=ca.name, a2q_luts=ca.luts, baseline_point=cb.name,
                                     baseline_luts=cb.luts, ratio=round(cb.luts / ca.luts, 3),
                                     a2q_lut_sites=ca.lut_sites, baseline_lut_sites=cb.lut_sites,
                                     ratio_lut_sites=sites))
        threshold = FLOAT_FRACTION * float_acc if float_acc else None
        eligible = [r for r in rows if threshold is None or r.accuracy >= threshold]
        out[arch] = IsoAccuracy(levels=rows, threshold=threshold,
                                best=max(eligible, key=lambda r: r.ratio) if eligible else None,
                                luts_tool=next((p.luts_tool for p in mine if p.luts_tool), None))
    return out


def iso_markdown(iso: dict[str, IsoAccuracy]) -> list[str]:
    """The sweep.md section: the best ratio per architecture, stated with its designs, then every level."""
    if not iso:
        return ["## LUTs at iso-accuracy", "",
                "Not computed: needs A2Q / A2Q+ points and `qat32` points with accuracy and LUTs "
                "(run the sweep with `--methods a2q,a2q+,qat32` and the synth stage).", ""]
    L = ["## LUTs at iso-accuracy (A2Q / A2Q+ vs unconstrained QAT with 32-bit accumulators)", ""]
    sites = any(x.ratio_lut_sites for r in iso.values() for x in r.levels)  # a column only where it was measured
    for arch, r in iso.items():
        b = r.best
        thr = "-" if r.threshold is None else f"{100 * r.threshold:.1f} %"
        if b:
            with_ram = "" if not b.ratio_lut_sites else (
                f" Counting LUT RAM too (logic + memory LUT sites), the same two designs take "
                f"{b.baseline_lut_sites} vs {b.a2q_lut_sites}: {b.ratio_lut_sites}x.")
            L.append(f"- **{arch}**: at >= 99 % of float accuracy (>= {thr}) the largest ratio is **{b.ratio}x**: "
                     f"{b.baseline_point} ({b.baseline_luts} LUTs) vs {b.a2q_point} ({b.a2q_luts} LUTs), "
                     f"both reaching {100 * b.accuracy:.1f} %. LUTs: {r.luts_tool}.{with_ram}")
        else:
            L.append(f"- **{arch}**: no accuracy level >= {thr} is reached by both an A2Q and a qat32 design.")
    head = "| architecture | accuracy % | cheapest A2Q design | LUT | cheapest qat32 design | LUT | ratio |"
    rule = "|---|---:|---|---:|---|---:|---:|"
    L += ["", head + (" LUT sites incl. LUT RAM (A2Q / qat32) | ratio incl. LUT RAM |" if sites else ""),
          rule + ("---:|---:|" if sites else "")]
    for arch, r in iso.items():
        for x in r.levels:
            extra = f" {x.a2q_lut_sites or '-'} / {x.baseline_lut_sites or '-'} | {x.ratio_lut_sites or '-'} |"
            L.append(f"| {arch} | {100 * x.accuracy:.1f} | {x.a2q_point} | {x.a2q_luts} | "
                     f"{x.baseline_point} | {x.baseline_luts} | {x.ratio} |" + (extra if sites else ""))
    return L + [""]


def plot_iso_accuracy(iso: dict[str, IsoAccuracy], path: Path) -> Path | None:
    """LUT ratio (qat32 / A2Q) against the accuracy level, one line per architecture."""
    if not any(r.levels for r in iso.values()):
        return None
    import matplotlib.ticker

    from a2qflow.flows.plots import _footnote, _save, plt, tool_labels

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for arch, r in iso.items():
        xs = [100 * x.accuracy for x in r.levels]
        # a level's ratio holds from just above the previous level up to it: "pre" steps
        ax.step(xs, [x.ratio for x in r.levels], where="pre", marker="o", label=arch)
        if r.threshold:
            ax.axvline(100 * r.threshold, color="0.6", ls=":", lw=1)
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.set_yscale("log")  # ratios span < 1x (folded, low levels) to > 10x (unrolled)
    times = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x")
    ax.yaxis.set_major_formatter(times)
    ax.yaxis.set_minor_formatter(times)
    ax.set_xlabel("accuracy level (%)")
    ax.set_ylabel("LUTs: 32-bit QAT / A2Q")
    ax.set_title("LUTs at iso-accuracy (cheapest design reaching each level)")
    ax.legend(fontsize=8)
    tools = tool_labels(r.luts_tool for r in iso.values())
    _footnote(fig, f"LUTs: {'; '.join(tools)}; dotted: 99 % of float accuracy")
    return _save(fig, path)
