const data = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = data[0];
const target = data[n + 1];
const seen = new Map();
for (let j = 0; j < n; j++) {
  const x = data[1 + j];
  const i = seen.get(target - x);
  if (i !== undefined) { console.log(`${i} ${j}`); break; }
  if (!seen.has(x)) seen.set(x, j);
}
