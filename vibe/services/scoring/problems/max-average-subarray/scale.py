"""``python scale.py N``: N random values and k = N/2 (a window-by-window sum is quadratic)."""

import random
import sys


def generate(n: int) -> str:
    rng = random.Random(n)
    return f"{n} {max(1, n // 2)}\n{' '.join(str(rng.randint(-(10**4), 10**4)) for _ in range(n))}\n"


if __name__ == "__main__":
    sys.stdout.write(generate(int(sys.argv[1])))
