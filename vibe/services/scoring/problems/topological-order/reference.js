const data = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const [n, m] = data;
const out = Array.from({ length: n + 1 }, () => []);
const indegree = new Int32Array(n + 1);
for (let e = 0; e < m; e++) {
  const u = data[2 + 2 * e], v = data[3 + 2 * e];
  out[u].push(v);
  indegree[v]++;
}
const ready = [];
for (let v = 1; v <= n; v++) if (indegree[v] === 0) ready.push(v);
for (let head = 0; head < ready.length; head++)
  for (const v of out[ready[head]]) if (--indegree[v] === 0) ready.push(v);
console.log(ready.join(" "));
