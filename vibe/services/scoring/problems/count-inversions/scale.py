"""``python scale.py N``: N random values (about N^2/4 inversions)."""

import random
import sys


def generate(n: int) -> str:
    rng = random.Random(n)
    return f"{n}\n{' '.join(str(rng.randint(-(10**9), 10**9)) for _ in range(n))}\n"


if __name__ == "__main__":
    sys.stdout.write(generate(int(sys.argv[1])))
