import sys


def count_inversions(a):
    """Bottom-up merge sort; counts pairs i < j with a[i] > a[j]."""
    n = len(a)
    src = list(a)
    dst = [0] * n
    inv = 0
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if src[j] < src[i]:
                    dst[k] = src[j]
                    inv += mid - i
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            if i < mid:
                dst[k:hi] = src[i:mid]
            else:
                dst[k:hi] = src[j:hi]
        src, dst = dst, src
        width *= 2
    return inv


def main():
    data = sys.stdin.buffer.read().split()
    n = int(data[0])
    a = list(map(int, data[1 : 1 + n]))
    sys.stdout.write(f"{count_inversions(a)}\n")


main()
