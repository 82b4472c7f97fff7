import sys


def two_sum(nums, target):
    seen = {}
    for j, x in enumerate(nums):
        i = seen.get(target - x)
        if i is not None:
            return i, j
        if x not in seen:
            seen[x] = j
    return -1, -1


def main():
    data = sys.stdin.buffer.read().split()
    n = int(data[0])
    nums = list(map(int, data[1 : 1 + n]))
    target = int(data[1 + n])
    i, j = two_sum(nums, target)
    sys.stdout.write(f"{i} {j}\n")


main()
