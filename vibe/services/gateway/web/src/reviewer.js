// The reviewers' page (review.html), over the reviewer HTTP API (review_http.py) with a backend
// key of scope reports:read, typed in and kept in sessionStorage (this tab only): the sessions,
// then one session's transcript with each turn's evaluation beside it (rubric scores and
// reasons), the holistic criteria linked to the turns they cite, the code with its test verdicts
// and the integrity fragments side by side, a JSON export and a printable view.
import { $, api, el, fixed, lower } from "./api.js";
import { citeTurns } from "./evidence.js";
import { languageSwitcher, onLanguage, t } from "./i18n.js";
import { renderInto } from "./markdown.js";
import { guardrailLine, guardrailText, holisticBlock, rubricRows, scoresBlock, spread, testsTable } from "./report.js";

const KEY = "vibe-review-key";
let nextPage = "";
let listed = [];
let opened = null; // {id, transcript, report}

const headers = () => ({ Authorization: "Bearer " + sessionStorage.getItem(KEY) });
const when = (ts) => (ts ? new Date(ts).toLocaleString() : "");

async function loadSessions(more = false) {
  $("review-error").textContent = "";
  const query = new URLSearchParams({ page_size: "50" });
  if ($("status-filter").value) query.set("status", $("status-filter").value);
  if (more && nextPage) query.set("page_token", nextPage);
  try {
    const body = await api(`/api/review/sessions?${query}`, { headers: headers() });
    listed = more ? listed.concat(body.sessions || []) : (body.sessions || []);
    nextPage = body.next_page_token || "";
    drawSessions();
  } catch (e) { $("review-error").textContent = e.message; }
}

function drawSessions() {
  $("more").hidden = !nextPage;
  $("sessions-table").replaceChildren(
    el("thead", {}, el("tr", {}, ...["candidate", "problem", "status", "created", "grade", "score"].map((k) =>
      el("th", { scope: "col", text: t(k) })))),
    el("tbody", {}, ...listed.map((s) => el("tr", {},
      el("td", {}, el("a", { href: `#${encodeURIComponent(s.session_id)}`, text: s.candidate_id })),
      el("td", { text: s.problem_id }), el("td", { text: lower(s.status, "SESSION_STATUS_") }),
      el("td", { text: when(s.created_at) }), el("td", { text: s.grade || "" }),
      el("td", { text: s.grade ? fixed(s.total_score) : "" })))));
}

async function openSession(id) {
  $("review-error").textContent = "";
  try {
    const transcript = await api(`/api/review/sessions/${encodeURIComponent(id)}/transcript`, { headers: headers() });
    let report = null;
    try {
      report = await api(`/api/sessions/${encodeURIComponent(id)}/report`, { headers: headers() });
    } catch (e) { if (e.status !== 409) throw e; } // 409: not submitted yet
    opened = { id, transcript, report };
    drawSession();
  } catch (e) { $("review-error").textContent = e.message; }
}

// A turn: the conversation on the left, its evaluation on the right (drill-down: the rubric).
function turnRow(turn) {
  const said = (who, message, cls) => {
    const body = el("div", { class: "md" });
    renderInto(body, message ? message.content : "");
    return el("div", { class: `msg ${cls}` }, el("div", { class: "meta", text: who }), body);
  };
  const ev = turn.evaluation || {};
  const evaluation = turn.evaluated
    ? el("div", {},
      el("p", {}, el("strong", { text: `${t("score")} ${fixed(ev.score)}` }),
        ` · ${lower(ev.intent, "INTENT_")}${spread(ev)} · ${t("guardrail")}: ${guardrailText(turn.guardrail)}`),
      el("p", { class: "meta", text: ev.final_reasoning || "" }),
      el("details", { open: true }, el("summary", { text: t("rubric") }),
        el("table", {}, el("tbody", {}, ...rubricRows(ev, 0)))))
    : el("p", { class: "meta", text: t("not_evaluated") });
  return el("article", { class: "turn", id: `turn-${turn.turn}`, tabindex: "-1", "aria-labelledby": `turn-${turn.turn}-h` },
    el("h3", { id: `turn-${turn.turn}-h`, text: t("turn", { n: turn.turn }) + (turn.interrupted ? ` · ${t("interrupted")}` : "") }),
    el("div", { class: "side-by-side" },
      el("div", { class: "transcript-cell" },
        said(t("candidate_said"), turn.user_message, "user"), said(t("tutor_said"), turn.assistant_message, "assistant")),
      el("div", { class: "evaluation-cell", "aria-label": t("evaluation") }, evaluation)));
}

function evidenceCell(existing) {
  return (text) => el("td", {}, ...citeTurns(text, existing).map((piece) => (piece.turn
    ? el("a", { href: `#turn-${piece.turn}`, class: "cite", text: piece.text, onclick: (e) => {
      e.preventDefault();
      const target = document.getElementById(`turn-${piece.turn}`);
      target.scrollIntoView({ behavior: "smooth", block: "start" });
      target.focus({ preventScroll: true });
    } })
    : piece.text)));
}

function codeBlock(r) {
  const code = r.code || {};
  const integrity = code.integrity || {};
  const fragments = (integrity.fragments || []).map((f) => el("div", { class: "side-by-side fragment" },
    el("figure", {}, el("figcaption", { text: t("submitted_lines", { line: f.submitted_first_line }) }), el("pre", { text: f.submitted })),
    el("figure", {}, el("figcaption", {}, el("a", { href: `#turn-${f.turn}`, text: t("shown_in_turn", { turn: f.turn }) })),
      el("pre", { text: f.shown }))));
  return [
    el("h2", { text: t("code_and_tests") }),
    el("div", { class: "side-by-side" },
      el("div", {}, el("p", { class: "meta", text: r.language }), el("pre", { class: "submitted", text: r.submitted_code || "" })),
      el("div", {}, ...testsTable(code))),
    el("h3", { text: t("integrity") }),
    integrity.checked ? el("p", { text: t("integrity_score", { score: fixed(integrity.score, 1), flag: integrity.flagged ? t("flagged") : "" }) }) : null,
    el("p", { class: "meta", text: integrity.method || "" }),
    fragments.length ? el("div", {}, ...fragments) : el("p", { class: "meta", text: t("no_fragments") }),
  ];
}

function drawSession() {
  if (!opened) return;
  const { transcript, report, id } = opened;
  const turns = transcript.turns || [];
  const existing = new Set(turns.map((x) => x.turn));
  const s = transcript.session || {};
  $("list-view").hidden = true;
  $("session-view").hidden = false;
  $("session-view").replaceChildren(
    el("nav", { class: "row no-print" },
      el("a", { href: "#", text: t("back") }),
      el("button", { type: "button", id: "export", text: t("export_json"), onclick: () => exportJson(id) }),
      el("button", { type: "button", id: "print", text: t("print"), onclick: () => window.print() }),
      report && !report.released_at
        ? el("button", { type: "button", id: "release", class: "secondary", text: t("release"), onclick: () => release(id) }) : null),
    el("h2", { text: `${s.candidate_id || ""} · ${s.problem_id || ""}` }),
    el("p", { class: "meta", text: `${id} · ${lower(s.status, "SESSION_STATUS_")} · ${when(s.created_at)}`
      + (report && report.released_at ? ` · ${t("released", { t: when(report.released_at) })}` : "") }),
    report ? scoresBlock(report) : el("p", { class: "meta", text: t("no_report") }),
    report ? el("section", { class: "holistic", "aria-label": t("summary") }, ...holisticBlock(report, evidenceCell(existing)), guardrailLine(report)) : null,
    el("h2", { text: `${t("transcript")} · ${t("evaluation")}` }),
    el("div", { class: "turns" }, ...turns.map(turnRow)),
    ...(report ? codeBlock(report) : []));
}

async function exportJson(id) {
  const response = await fetch(`/api/review/sessions/${encodeURIComponent(id)}/export`, { headers: headers() });
  if (!response.ok) { $("review-error").textContent = (await response.json().catch(() => ({}))).error?.message || response.statusText; return; }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: `session-${id}.json` });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function release(id) {
  try {
    await api(`/api/review/sessions/${encodeURIComponent(id)}/release`, { method: "POST", headers: headers() });
    await openSession(id);
  } catch (e) { $("review-error").textContent = e.message; }
}

function route() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (id && !id.startsWith("turn-")) openSession(id);
  else if (!id) { opened = null; $("session-view").hidden = true; $("list-view").hidden = false; loadSessions(); }
}

export async function main() {
  languageSwitcher($("lang"));
  $("key").value = sessionStorage.getItem(KEY) || "";
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    route();
  });
  $("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); $("key").value = ""; });
  $("status-filter").addEventListener("change", () => loadSessions());
  $("more").addEventListener("click", () => loadSessions(true));
  window.addEventListener("hashchange", route);
  onLanguage(() => { drawSessions(); drawSession(); });
  if (sessionStorage.getItem(KEY)) route();
}
