// Turn citations in an evaluation's evidence ("turn 3", "turns 2, 4 and 5", "turns 2-4",
// "3번째 턴", "턴 2, 3") found so that each cited turn can link to the transcript. The numbers
// must follow (or, in Korean, precede) the word for a turn; a number elsewhere ("2 tests") is not
// a citation, and a number that names no turn of the session stays text.

// A list of numbers: "1, 2", "2 and 4", "2-4", "2 to 4", "1, 3 및 5"; Korean numbers may carry
// their counter ("1번, 3번째").
const SEP = String.raw`\s*(?:,\s*and|,|and|&|or|to|through|~|-|–|및|와|과)\s*`;
const NUM = String.raw`#?\d+`;
const KO_NUM = String.raw`\d+(?:\s*(?:번째|번))?`;
// "turn(s)" or "턴" then the list ("turns 1, 2", "턴 2, 3")
const AFTER_WORD = new RegExp(String.raw`(?:\bturns?|턴)\s*(${NUM}(?:${SEP}${NUM})*)`, "gi");
// the Korean order: the list then "턴" ("3번째 턴", "2, 3번 턴", "3턴")
const BEFORE_WORD = new RegExp(String.raw`(${KO_NUM}(?:${SEP}${KO_NUM})*)\s*턴`, "g");

function numbersIn(list) {
  const out = [];
  const parts = list.match(/\d+|~|-|–|\bto\b|\bthrough\b/gi) || [];
  for (let i = 0; i < parts.length; i++) {
    if (/^\d+$/.test(parts[i])) out.push(Number(parts[i]));
    else if (i > 0 && i + 1 < parts.length && /^\d+$/.test(parts[i + 1]) && /^\d+$/.test(parts[i - 1])) {
      const from = Number(parts[i - 1]), to = Number(parts[i + 1]);
      for (let n = from + 1; n < to && to - from <= 200; n++) out.push(n); // a range's inside
    }
  }
  return out;
}

/** `text` cut into pieces: {text} or {text, turn} for a number that cites an existing turn. */
export function citeTurns(text, existing) {
  const spans = []; // [start, end, turn]
  for (const re of [AFTER_WORD, BEFORE_WORD]) {
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(text))) {
      const list = m[1];
      const listStart = m.index + m[0].indexOf(list);
      const digits = /\d+/g;
      let d;
      const wanted = new Set(numbersIn(list));
      while ((d = digits.exec(list))) {
        const n = Number(d[0]);
        if (wanted.has(n) && existing.has(n)) spans.push([listStart + d.index, listStart + d.index + d[0].length, n]);
      }
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  const pieces = [];
  let at = 0;
  for (const [start, end, turn] of spans) {
    if (start < at) continue; // both patterns found it
    if (start > at) pieces.push({ text: text.slice(at, start) });
    pieces.push({ text: text.slice(start, end), turn });
    at = end;
  }
  if (at < text.length) pieces.push({ text: text.slice(at) });
  // A range "2-4" links 2 and 4; the turns inside it are cited too (returned for a summary).
  return pieces;
}

/** Every turn `text` cites (ranges included), among `existing`. */
export function citedTurns(text, existing) {
  const cited = new Set();
  for (const re of [AFTER_WORD, BEFORE_WORD]) {
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(text))) for (const n of numbersIn(m[1])) if (existing.has(n)) cited.add(n);
  }
  return [...cited].sort((a, b) => a - b);
}
