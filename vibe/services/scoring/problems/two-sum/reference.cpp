#include <cstdio>
#include <unordered_map>
#include <vector>

int main() {
    int n;
    if (std::scanf("%d", &n) != 1) return 1;
    std::vector<long long> a(n);
    for (auto& x : a) std::scanf("%lld", &x);
    long long target;
    std::scanf("%lld", &target);
    std::unordered_map<long long, int> seen;
    seen.reserve(2 * n);
    for (int j = 0; j < n; ++j) {
        auto it = seen.find(target - a[j]);
        if (it != seen.end()) { std::printf("%d %d\n", it->second, j); return 0; }
        seen.emplace(a[j], j);
    }
    return 0;
}
