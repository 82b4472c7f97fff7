const data = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const [n, k] = data;
let window = 0;
for (let i = 0; i < k; i++) window += data[2 + i];
let best = window;
for (let i = k; i < n; i++) {
  window += data[2 + i] - data[2 + i - k];
  if (window > best) best = window;
}
console.log((best / k).toFixed(6));
