"""``python scale.py N``: N distinct values but for one repeat in the middle (answer about N/2,
so both counting distinct values and restarting at every index are caught)."""

import random
import sys


def generate(n: int) -> str:
    rng = random.Random(n)
    nums = rng.sample(range(10**9 + 1), n)
    if n > 2:
        nums[n // 2] = nums[n // 2 - 1]
    return f"{n}\n{' '.join(map(str, nums))}\n"


if __name__ == "__main__":
    sys.stdout.write(generate(int(sys.argv[1])))
