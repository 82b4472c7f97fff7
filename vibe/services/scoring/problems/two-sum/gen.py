"""Regenerate the tests of two-sum (deterministic): ``python gen.py``."""

import random
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _genlib import Test, build

LARGE_N = 200_000


def fmt(nums, target):
    return f"{len(nums)}\n{' '.join(map(str, nums))}\n{target}\n"


def brute(data: str) -> str:
    tok = data.split()
    n = int(tok[0])
    a = list(map(int, tok[1 : 1 + n]))
    t = int(tok[1 + n])
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if a[i] + a[j] == t]
    assert len(pairs) == 1, pairs[:5]
    return f"{pairs[0][0]} {pairs[0][1]}"


def planted(rng, n, target, i, j):
    """n values with exactly one pair (i, j) summing to target: every other value is > target/2
    (so two of them sum to more than target) and differs from the planted pair."""
    a_val = rng.randint(max(-(10**9), target - 10**9), target // 2 - 1)
    b_val = target - a_val
    assert -(10**9) <= b_val <= 10**9
    lo = target // 2 + 1
    nums = []
    used = {a_val, b_val}
    while len(nums) < n - 2:
        v = rng.randint(lo, 10**9)
        if v not in used:
            nums.append(v)
    nums.insert(min(i, j), a_val)
    nums.insert(max(i, j), b_val)
    assert count_pairs(nums, target) == 1
    return nums


def count_pairs(nums, target):
    cnt = Counter(nums)
    total = 0
    for v, c in cnt.items():
        w = target - v
        if w == v:
            total += c * (c - 1)
        else:
            total += c * cnt.get(w, 0)
    return total // 2


def random_unique(rng, n, lo, hi):
    while True:
        nums = [rng.randint(lo, hi) for _ in range(n)]
        i, j = sorted(rng.sample(range(n), 2))
        t = nums[i] + nums[j]
        if sum(1 for p in range(n) for q in range(p + 1, n) if nums[p] + nums[q] == t) == 1:
            return nums, t


def main():
    rng = random.Random(20240601)
    tests = [
        Test("4\n2 7 11 15\n9\n", hidden=False),
        Test("5\n3 2 4 8 -1\n6\n", hidden=False),
        Test("2\n3 3\n6\n", hidden=True),  # minimum n, duplicate values
        Test("6\n-5 0 1000000000 -1000000000 4 9\n0\n", hidden=True),  # negatives, extremes
        Test(fmt(*random_unique(rng, 40, -50, 50)), hidden=True),
        Test(fmt(*random_unique(rng, 300, -(10**6), 10**6)), hidden=True),
        Test(fmt(planted(rng, 3000, 123_456, 2990, 2999), 123_456), hidden=True),  # medium
        Test(fmt(planted(rng, LARGE_N, 777_777_777, LARGE_N - 2, LARGE_N - 1), 777_777_777), hidden=True, large=True),
        Test(fmt(planted(rng, LARGE_N, -400_000_001, 150_000, LARGE_N - 1), -400_000_001), hidden=True, large=True),
    ]
    build(HERE, tests, brute, brute_max_bytes=40_000)


if __name__ == "__main__":
    main()
