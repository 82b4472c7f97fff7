import sys


def longest_unique(nums):
    last = {}
    best = 0
    start = 0
    for i, x in enumerate(nums):
        p = last.get(x, -1)
        if p >= start:
            start = p + 1
        last[x] = i
        if i - start + 1 > best:
            best = i - start + 1
    return best


def main():
    data = sys.stdin.buffer.read().split()
    n = int(data[0])
    nums = data[1 : 1 + n]  # equal values <=> equal tokens (no leading zeros in the input)
    sys.stdout.write(f"{longest_unique(nums)}\n")


main()
