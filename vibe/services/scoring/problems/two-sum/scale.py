"""``python scale.py N``: a two-sum input of size N with exactly one answer, at the very end."""

import random
import sys


def generate(n: int) -> str:
    rng = random.Random(n)
    target = 777_777_777
    low = target // 2 + 1  # any two of these sum to more than target
    nums = rng.sample(range(low, 10**9), n - 2)
    a = rng.randint(-(10**8), target // 2 - 1)
    nums += [a, target - a]
    return f"{n}\n{' '.join(map(str, nums))}\n{target}\n"


if __name__ == "__main__":
    sys.stdout.write(generate(int(sys.argv[1])))
