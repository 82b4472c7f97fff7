"""Regenerate the tests of max-average-subarray (deterministic): ``python gen.py``."""

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from _genlib import Test, build
from scale import generate

LARGE_N = 200_000


def brute(data: str) -> str:
    tok = data.split()
    n, k = int(tok[0]), int(tok[1])
    a = list(map(int, tok[2 : 2 + n]))
    return f"{max(sum(a[i : i + k]) for i in range(n - k + 1)) / k:.6f}"


def fmt(a, k):
    return f"{len(a)} {k}\n{' '.join(map(str, a))}\n"


def main():
    rng = random.Random(31337)
    tests = [
        Test("6 4\n1 12 -5 -6 50 3\n", hidden=False),
        Test("5 2\n-1 -2 -3 -4 -5\n", hidden=False),
        Test("1 1\n7\n", hidden=True),
        Test("3 3\n1 2 2\n", hidden=True),  # repeating decimal 1.666667
        Test(fmt([rng.randint(-100, 100) for _ in range(50)], 7), hidden=True),
        Test(fmt([rng.randint(-(10**4), 10**4) for _ in range(2000)], 999), hidden=True),
        Test(generate(LARGE_N), hidden=True, large=True),
        Test(fmt([rng.randint(-(10**4), 10**4) for _ in range(LARGE_N)], 3), hidden=True, large=True),
    ]
    build(HERE, tests, brute, brute_max_bytes=20_000)


if __name__ == "__main__":
    main()
