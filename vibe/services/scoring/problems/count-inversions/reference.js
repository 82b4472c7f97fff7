const data = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean).map(Number);
const n = data[0];
let src = Float64Array.from(data.slice(1, 1 + n));
let dst = new Float64Array(n);
let inv = 0n;
for (let width = 1; width < n; width *= 2) {
  let pass = 0;
  for (let lo = 0; lo < n; lo += 2 * width) {
    const mid = Math.min(lo + width, n), hi = Math.min(lo + 2 * width, n);
    let i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
      if (src[j] < src[i]) { pass += mid - i; dst[k++] = src[j++]; } else dst[k++] = src[i++];
    }
    while (i < mid) dst[k++] = src[i++];
    while (j < hi) dst[k++] = src[j++];
  }
  inv += BigInt(pass);
  [src, dst] = [dst, src];
}
console.log(inv.toString());
