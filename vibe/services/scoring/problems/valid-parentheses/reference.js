const lines = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const t = Number(lines[0]);
const pairs = { ")": "(", "]": "[", "}": "{" };
const out = [];
for (let k = 1; k <= t; k++) {
  const stack = [];
  let ok = true;
  for (const ch of lines[k]) {
    if (ch === "(" || ch === "[" || ch === "{") stack.push(ch);
    else if (stack.length === 0 || stack.pop() !== pairs[ch]) { ok = false; break; }
  }
  out.push(ok && stack.length === 0 ? "true" : "false");
}
console.log(out.join("\n"));
