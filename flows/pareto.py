"""The Pareto front of (cost, accuracy) points: the designs a designer can pick from, every other one dominated.

The sweep uses it to choose which points are worth a synthesis run (`flows.sweep.run_pruned`, on estimated LUTs)
and the plots draw it (`flows.plots.plot_pareto`); it is data logic, so it lives apart from matplotlib.
"""

from __future__ import annotations

from typing import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated points for (cost low, accuracy high), sorted by cost: the staircase a designer can pick from.

    Args:
        points: (cost, accuracy) pairs; any costs and accuracies that compare (LUTs, bits, fractions, percent).

    Returns:
        The points no other point beats on both (lower or equal cost and higher accuracy), by increasing cost; of
        equal-cost points only the most accurate one.
    """
    front: list[tuple[float, float]] = []
    for c, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or a > front[-1][1]:
            front.append((c, a))
    return front
