#include <iostream>
#include <string>

int main() {
    std::ios::sync_with_stdio(false);
    int t;
    if (!(std::cin >> t)) return 1;
    std::string s, out, stack;
    for (int k = 0; k < t; ++k) {
        std::cin >> s;
        stack.clear();
        bool ok = true;
        for (char c : s) {
            if (c == '(' || c == '[' || c == '{') { stack.push_back(c); continue; }
            char want = c == ')' ? '(' : c == ']' ? '[' : '{';
            if (stack.empty() || stack.back() != want) { ok = false; break; }
            stack.pop_back();
        }
        out += ok && stack.empty() ? "true\n" : "false\n";
    }
    std::cout << out;
    return 0;
}
