"""Regenerate the tests of longest-unique-subarray (deterministic): ``python gen.py``."""

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _genlib import Test, build

LARGE_N = 200_000


def brute(data: str) -> str:
    tok = data.split()
    n = int(tok[0])
    a = list(map(int, tok[1 : 1 + n]))
    best = 0
    for i in range(n):
        for j in range(i, n):
            if len(set(a[i : j + 1])) != j - i + 1:
                break
            best = max(best, j - i + 1)
    return str(best)


def fmt(nums):
    return f"{len(nums)}\n{' '.join(map(str, nums))}\n"


def main():
    rng = random.Random(7)
    # large 1: almost all distinct (a few repeats far apart) -> answer ~ 10^5
    big1 = rng.sample(range(10**9 + 1), LARGE_N)
    big1[150_000] = big1[40_000]
    big1[190_000] = big1[120_000]
    # large 2: a permutation, repeated once: answer = the permutation length
    perm = rng.sample(range(1, 10**9), LARGE_N // 2)
    big2 = perm + perm
    tests = [
        Test(fmt([1, 2, 3, 1, 2, 3, 4, 5]), hidden=False),
        Test(fmt([7, 7, 7, 7]), hidden=False),
        Test(fmt([5, 1, 3, 5, 2, 3, 4, 1]), hidden=False),
        Test(fmt([42]), hidden=True),  # n = 1
        Test(fmt([0, 1000000000, 0, 1000000000]), hidden=True),  # extremes
        Test(fmt([rng.randint(0, 9) for _ in range(200)]), hidden=True),
        Test(fmt([rng.randint(0, 400) for _ in range(1500)]), hidden=True),
        Test(fmt(rng.sample(range(10**9), 3000)), hidden=True),  # medium, all distinct
        Test(fmt(big1), hidden=True, large=True),
        Test(fmt(big2), hidden=True, large=True),
    ]
    build(HERE, tests, brute, brute_max_bytes=40_000)


if __name__ == "__main__":
    main()
