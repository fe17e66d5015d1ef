"""Markdown tables: one helper for every table a stage, the report or a benchmark writes.

Why one: about 150 lines across the stages assembled `| a | b |` rows and `|---|---:|` separators by hand, each
with its own chance of a missing cell or a misaligned column. `table` checks that every row has one cell per column
and writes the GitHub form the files have always had (`| cell | cell |`, `---` left, `---:` right aligned).
"""

from __future__ import annotations

from typing import Iterable, Sequence


def table(header: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of one Markdown table.

    Args:
        header: the column titles.
        align: one letter per column, `l` (left, `---`) or `r` (right, `---:`).
        rows: the cells of each row (str() of each), one per column.

    Returns:
        The header line, the alignment line and one line per row, without a trailing newline.

    Example:
        >>> table(["layer", "P"], "lr", [["fc0", 12]])
        ['| layer | P |', '|---|---:|', '| fc0 | 12 |']
    """
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r}: one of l / r per column ({len(header)} columns)")
    out = [_line(header), "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells for {len(header)} columns: {list(row)}")
        out.append(_line(row))
    return out


def _line(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
