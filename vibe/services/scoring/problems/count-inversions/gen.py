"""Regenerate the tests of count-inversions (deterministic): ``python gen.py``."""

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _genlib import Test, build

LARGE_N = 100_000


def brute(data: str) -> str:
    tok = data.split()
    n = int(tok[0])
    a = list(map(int, tok[1 : 1 + n]))
    return str(sum(1 for i in range(n) for j in range(i + 1, n) if a[i] > a[j]))


def fmt(nums):
    return f"{len(nums)}\n{' '.join(map(str, nums))}\n"


def main():
    rng = random.Random(99)
    big_random = [rng.randint(-(10**9), 10**9) for _ in range(LARGE_N)]
    # large 2: descending with many duplicates -> close to n^2/2 inversions (needs > 32 bits)
    big_desc = sorted((rng.randint(0, 5000) for _ in range(LARGE_N)), reverse=True)
    tests = [
        Test(fmt([2, 4, 1, 3, 5]), hidden=False),
        Test(fmt([5, 4, 3, 2, 1]), hidden=False),
        Test(fmt([7]), hidden=True),  # n = 1
        Test(fmt([3, 3, 3, 3]), hidden=True),  # equal values are not inversions
        Test(fmt([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), hidden=True),
        Test(fmt([rng.randint(-(10**9), 10**9) for _ in range(300)]), hidden=True),
        Test(fmt([rng.randint(-5, 5) for _ in range(2500)]), hidden=True),  # medium, duplicates
        Test(fmt(big_random), hidden=True, large=True),
        Test(fmt(big_desc), hidden=True, large=True),
    ]
    build(HERE, tests, brute, brute_max_bytes=20_000)
    # The large outputs, cross-checked with an independent O(n log n) method (Fenwick tree).
    for tid, arr in (("08", big_random), ("09", big_desc)):
        got = int((HERE / "tests" / f"{tid}.out").read_text())
        assert got == fenwick(arr), tid


def fenwick(a):
    ranks = {v: i + 1 for i, v in enumerate(sorted(set(a)))}
    tree = [0] * (len(ranks) + 1)
    inv = 0
    for seen, v in enumerate(a):
        r = ranks[v]
        le = 0
        i = r
        while i:
            le += tree[i]
            i -= i & -i
        inv += seen - le
        i = r
        while i < len(tree):
            tree[i] += 1
            i += i & -i
    return inv


if __name__ == "__main__":
    main()
