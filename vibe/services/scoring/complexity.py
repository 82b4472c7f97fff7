"""Empirical time complexity from CPU times measured on growing input sizes.

The program's start-up cost (interpreter, parsing) is subtracted first: ``work(n) = cpu(n) -
baseline`` where ``baseline`` is its CPU time on the smallest input.  Points whose work is below
``MIN_WORK_MS`` or below ``MIN_WORK_FRACTION`` of the largest point's are dropped: there, fixed
costs the baseline misses (a JIT warming up, allocator growth) bend the curve flat.  Then ``log work`` is fitted against ``log n`` (least
squares: the exponent), and the class is the candidate ``n^a log^b n`` whose shape, with the best
constant, leaves the smallest squared error in log space.  With the sizes doubling, O(n) and
O(n log n) differ by ~0.1 in exponent, so neighbouring classes can swap on a noisy machine;
O(n) vs O(n^2) cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_WORK_MS = 8.0
MIN_WORK_FRACTION = 0.02
#: (label, power of n, power of log n)
CLASSES: tuple[tuple[str, int, int], ...] = (
    ("O(1)", 0, 0),
    ("O(log n)", 0, 1),
    ("O(n)", 1, 0),
    ("O(n log n)", 1, 1),
    ("O(n^2)", 2, 0),
    ("O(n^2 log n)", 2, 1),
    ("O(n^3)", 3, 0),
)


@dataclass(frozen=True)
class Fit:
    label: str  # e.g. "O(n log n)", or why there is none
    exponent: float | None  # slope of log work against log n
    points_used: int


def fit(points: list[tuple[int, float]], baseline_ms: float) -> Fit:
    """``points``: (n, cpu_ms) of accepted runs.  Needs two usable points at least 2x apart in n."""
    top = max((ms - baseline_ms for _, ms in points), default=0.0)
    floor = max(MIN_WORK_MS, MIN_WORK_FRACTION * top)
    usable = [(n, ms - baseline_ms) for n, ms in sorted(points) if n > 1 and ms - baseline_ms >= floor]
    if len(usable) < 2 or usable[-1][0] < 2 * usable[0][0]:
        if points and all(ms - baseline_ms < MIN_WORK_MS for _, ms in points):
            return Fit("O(1) (too fast to measure above start-up)", 0.0, len(usable))
        return Fit("unknown (too few measurable sizes)", None, len(usable))
    xs = [math.log(n) for n, _ in usable]
    ys = [math.log(w) for _, w in usable]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)

    def error(a: int, b: int) -> float:
        shape = [a * x + b * math.log(x) for x in xs]
        c = sum(y - s for y, s in zip(ys, shape, strict=True)) / len(ys)
        return sum((y - s - c) ** 2 for y, s in zip(ys, shape, strict=True))

    label = min(CLASSES, key=lambda cls: error(cls[1], cls[2]))[0]
    return Fit(label, round(slope, 2), len(usable))
