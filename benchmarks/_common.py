"""What the benchmark scripts share: writing a result (benchmarks/results/<name>.json + .md), the header of a
training benchmark's result, and copying a result's tables between README.md's markers.

Its own module because each script used to carry a copy of these tails (issue 23: one source per fact); the scripts
import it as `_common` (their folder is on sys.path when run as `python benchmarks/<script>.py`).
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from pathlib import Path

from a2qflow.hw.files import atomic_write_json, atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"  # benchmarks/results: what README and docs copy from


def publish(out: Path, name: str, doc: dict, markdown: Callable[[dict], str], echo: bool = False) -> dict:
    """Write OUT/<name>.json (the document) and OUT/<name>.md (markdown(doc), what the README copies) atomically.

    Args:
        out: the results folder (created if missing).
        name: the benchmark's file stem, e.g. "ptq".
        doc: the JSON document.
        markdown: renders the document's Markdown.
        echo: also print the Markdown (scripts run once by hand show their table).
    Returns:
        doc, so a caller can keep reading it.
    """
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(doc)
    atomic_write_json(out / f"{name}.json", doc)
    atomic_write_text(out / f"{name}.md", md)
    if echo:
        print(md)
    return doc


def training_header(benchmark: str) -> dict:
    """The keys a training benchmark's JSON starts with: what produced the numbers (torch / Brevitas versions, the
    torch thread count, the machine), so a reader can tell whether two results are comparable."""
    import brevitas
    import torch

    return {"benchmark": benchmark, "torch": torch.__version__, "brevitas": brevitas.__version__,
            "threads": torch.get_num_threads(), "machine": f"{platform.machine()} {platform.system()}"}


def fill_readme_block(readme: Path, begin: str, end: str, body: str) -> None:
    """Replace what stands between the `begin` and `end` marker lines of README.md with `body`, verbatim.

    Raises SystemExit naming the file and the markers when either marker is missing (nothing is written).
    """
    text = readme.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{readme}: no '{begin}' ... '{end}' block to fill")
    head, rest = text.split(begin, 1)
    atomic_write_text(readme, f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}")


def table_row(row: dict, keys: tuple[str, ...]) -> str:
    """One Markdown table row: row[k] for each key in order, an empty cell where a key is missing or None."""
    return "| " + " | ".join("" if row.get(k) is None else str(row[k]) for k in keys) + " |"


def rewrite_markdown(out: Path, name: str, markdown: Callable[[dict], str]) -> int:
    """A script's --markdown-only: OUT/<name>.md written again from the stored OUT/<name>.json (the current wording,
    the same numbers, nothing re-run). Returns 0, the script's exit status."""
    import json

    atomic_write_text(out / f"{name}.md", markdown(json.loads((out / f"{name}.json").read_text())))
    return 0


def result_options(ap: argparse.ArgumentParser, name: str) -> None:
    """The options of a script that writes benchmarks/results/<name>.{json,md}: --out (the results folder) and
    --markdown-only (run nothing, rewrite_markdown from the stored JSON)."""
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    ap.add_argument("--markdown-only", action="store_true",
                    help=f"run nothing: rewrite OUT/{name}.md from OUT/{name}.json")
