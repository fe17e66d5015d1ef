"""PNG plots for the run report and the sweep (matplotlib, Agg backend: no display needed).

Every figure carries the name of the tool that produced its numbers in its title or a footnote, because a
resource count from yosys and one from Vivado are not the same number.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from a2qflow.flows.pareto import pareto_front  # noqa: E402
from a2qflow.hw.files import atomic_write_bytes  # noqa: E402


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def _footnote(fig, text: str, width: int = 100) -> None:
    """The tool line under a figure, wrapped: a long line would widen the saved figure (bbox tight) past its axes."""
    fig.text(0.01, -0.03, textwrap.fill(text, width), fontsize=7, color="0.35", ha="left", va="top")


def tool_labels(labels) -> list[str]:
    """Distinct tool labels, a label dropped when another extends it (the unrolled synthesis label is the folded one
    plus ", unrolled layers as sums of channel-group runs"): each tool is named once under a figure."""
    labels = {l for l in labels if l}
    return sorted(t for t in labels if not any(o != t and o.startswith(t) for o in labels))


def plot_acc_bits(layers: Sequence[dict], path: Path, source: str) -> Path:
    """Per-layer accumulator widths: data-type bound, A2Q L1 bound, exact bound, used (+ trained target)."""
    names = [l["name"] for l in layers]
    keys = [("acc_bits_datatype", "data-type bound", "0.75"), ("acc_bits_l1", "L1 bound", "tab:orange"),
            ("acc_bits_exact", "exact bound", "tab:green"), ("acc_bits", "used", "tab:blue")]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(names) + 2), 3.4))
    width = 0.8 / len(keys)
    for i, (k, label, color) in enumerate(keys):
        xs = [j + (i - 1.5) * width for j in range(len(names))]
        vals = [l[k] for l in layers]
        ax.bar(xs, vals, width, label=label, color=color)
        for x, v in zip(xs, vals):
            ax.text(x, v + 0.3, str(v), ha="center", fontsize=7)
    targets = [(j, l.get("target_acc_bits")) for j, l in enumerate(layers) if l.get("target_acc_bits")]
    if targets:
        ax.scatter([j + 1.5 * width for j, _ in targets], [t for _, t in targets], marker="_", s=300, color="red",
                   label="trained target P", zorder=3)
    ax.axhline(32, color="0.5", ls=":", lw=1)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("accumulator bits")
    ax.set_title("Accumulator width per layer")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _footnote(fig, f"source: {source}")
    return _save(fig, path)


RESOURCE_KEYS = ("LUT", "FF", "CARRY", "DSP", "BRAM")


def plot_resources(rows: Sequence[dict], path: Path) -> Path:
    """Planned vs the 32-bit design per synthesis flow (one panel per family / mapping)."""
    n = len(rows)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, r in zip(axes[0], rows):
        keys = [k for k in RESOURCE_KEYS if (r["planned"].get(k) or r["baseline32"].get(k))]
        xs = range(len(keys))
        p = [r["planned"].get(k) or 0 for k in keys]
        b = [r["baseline32"].get(k) or 0 for k in keys]
        ax.bar([x - 0.2 for x in xs], p, 0.4, label="planned P", color="tab:blue")
        ax.bar([x + 0.2 for x in xs], b, 0.4, label="32-bit design", color="0.7")
        for x, k in zip(xs, keys):
            s = r["saved_pct"].get(k)
            if s is not None:
                ax.text(x, max(r["planned"].get(k) or 0, r["baseline32"].get(k) or 0) * 1.02, f"{s:+.0f}%"
                        if s < 0 else f"-{s:.0f}%", ha="center", fontsize=7)
        ax.set_xticks(list(xs), keys)
        ax.set_title(f"{r['family']} ({r['mapping']})", fontsize=9)
        ax.set_xlabel(f"{r['tool']} {r.get('version') or ''}".strip(), fontsize=7)
        ax.legend(fontsize=7)
    fig.suptitle("Resources: planned accumulators vs the 32-bit design", fontsize=10)
    return _save(fig, path)


def plot_accuracy(acc: dict, path: Path) -> Path:
    """Test accuracy of each executor that measured it, labelled with that executor."""
    items = [(k, v) for k, v in acc.items() if isinstance(v, dict) and v.get("value") is not None]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(items) + 1), 3.0))
    labels = [f"{k}\n({v['tool']})" for k, v in items]
    vals = [100 * v["value"] for _, v in items]
    ax.bar(range(len(items)), vals, color=["0.6"] + ["tab:blue"] * (len(items) - 1))
    for i, v in enumerate(vals):
        ax.text(i, v + 0.5, f"{v:.1f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(items)), labels, fontsize=7)
    ax.set_ylim(0, 105)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy")
    return _save(fig, path)


METHOD_STYLE = {"a2q": ("A2Q", "tab:blue", "o"), "a2q+": ("A2Q+", "tab:green", "s"),
                "naive": ("naive (shrink N=M)", "tab:red", "^"),
                "qat32": ("unconstrained QAT, 32-bit acc.", "0.35", "D")}


def pareto_series(points: Sequence[dict], x_key: str) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(method, architecture) -> [(cost, accuracy %)] of the points that have both, in METHOD_STYLE order.

    Why per architecture: a folded and an unrolled design of one method are different hardware; one front over both
    would hide the one that is never on it."""
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for p in points:
        if p["method"] in METHOD_STYLE and p.get(x_key) is not None and p.get("accuracy") is not None:
            key = (p["method"], p.get("architecture") or "folded")
            series.setdefault(key, []).append((p[x_key], 100 * p["accuracy"]))
    order = list(METHOD_STYLE)
    return dict(sorted(series.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1] != "folded", kv[0][1])))


def plot_pareto(points: Sequence[dict], x_key: str, x_label: str, path: Path, float_acc: float | None,
                source: str) -> Path:
    """Accuracy vs a cost (accumulator bits or LUTs) per method and architecture: every point, and its Pareto
    front as a line (solid folded, dashed unrolled)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    series = pareto_series(points, x_key)
    several = len({arch for _, arch in series}) > 1
    for (method, arch), pts in series.items():
        label, color, marker = METHOD_STYLE[method]
        folded = arch == "folded"
        ax.scatter(*zip(*pts), color=color, marker=marker, alpha=0.45, s=22, facecolors=None if folded else "none")
        front = pareto_front(pts)
        ax.plot(*zip(*front), color=color, marker=marker, label=f"{label}, {arch}" if several else label,
                drawstyle="steps-post", lw=1.5, ls="-" if folded else "--", mfc=None if folded else "none")
    costs = [c for pts in series.values() for c, _ in pts]
    if x_key == "luts" and costs and min(costs) > 0 and max(costs) / min(costs) > 20:
        ax.set_xscale("log")  # folded and unrolled designs differ by orders of magnitude
    if float_acc is not None:
        ax.axhline(100 * float_acc, color="0.3", ls="--", lw=1, label="float reference")
    ax.set_xlabel(x_label)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Accuracy vs {x_label.split(' (')[0]}", fontsize=10)
    _footnote(fig, f"source: {source}")
    return _save(fig, path)
