const data = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
const n = Number(data[0]);
const last = new Map();
let best = 0, start = 0;
for (let i = 0; i < n; i++) {
  const x = data[1 + i];
  const p = last.get(x);
  if (p !== undefined && p >= start) start = p + 1;
  last.set(x, i);
  if (i - start + 1 > best) best = i - start + 1;
}
console.log(best);
