#include <cstdio>
#include <unordered_map>

int main() {
    int n;
    if (std::scanf("%d", &n) != 1) return 1;
    std::unordered_map<long long, int> last;
    last.reserve(2 * n);
    int best = 0, start = 0;
    for (int i = 0; i < n; ++i) {
        long long x;
        std::scanf("%lld", &x);
        auto it = last.find(x);
        if (it != last.end() && it->second >= start) start = it->second + 1;
        last[x] = i;
        if (i - start + 1 > best) best = i - start + 1;
    }
    std::printf("%d\n", best);
    return 0;
}
