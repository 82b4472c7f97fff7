// The parts of a graded report, explained: the candidate's page (full view) and the reviewers'
// page draw them the same way. Every number says what it is and where it comes from (weights,
// medians, the formula, the degraded parts).
import { el, fixed, lower } from "./api.js";
import { t, verdictText } from "./i18n.js";

/** The grade and the four scores, with the formula and the LLM that judged. */
export function scoresBlock(r) {
  const s = r.scores || {};
  const degraded = (r.degraded_parts || []).length ? ` · ${t("degraded")}: ${r.degraded_parts.join(", ")}` : "";
  return el("div", { class: "scores" },
    el("div", { class: "row" },
      el("span", { class: "grade", text: s.grade || "–" }),
      el("span", { text: `${t("total")} ${fixed(s.total_score)} · ${t("prompt")} ${fixed(s.prompt_score)} · `
        + `${t("performance")} ${fixed(s.performance_score)} · ${t("correctness")} ${fixed(s.correctness_score)}` })),
    el("p", { class: "meta", text: `${s.formula || ""} · ${t("llm")}: ${r.llm_provider || ""}${degraded}` }),
    lateLine(r),
    holisticWhen(r));
}

/** A submit that came after the session's time limit (int64 arrives as a string in JSON). */
export function lateLine(r) {
  const late = Number(r.late_by_s || 0);
  return late > 0 ? el("p", { class: "meta late", text: t("submitted_late", { s: late }) }) : null;
}

/** Whether the conversation was judged with the last turn's evaluation (while the candidate
 * worked: no LLM call at submit) or at submit; nothing when the view shows no judgement. */
export function holisticWhen(r) {
  const h = r.holistic;
  if (!h) return null;
  const text = h.precomputed ? t("holistic_precomputed", { turn: h.through_turn }) : t("holistic_at_submit");
  return el("p", { class: "meta holistic-when", text });
}

/** One turn's rubric rows (criterion, score, weight, reason), heaviest first. */
export function rubricRows(turn, lead = 1) {
  return (turn.rubrics || []).slice().sort((a, b) => (b.weight || 0) - (a.weight || 0)).map((x) =>
    el("tr", { class: "rubric" },
      ...Array.from({ length: lead }, () => el("td")),
      el("td", { text: x.criterion }), el("td", { text: fixed(x.score) }),
      el("td", { text: t("weight", { w: fixed(x.weight) }) }), el("td", { text: x.reason })));
}

export const spread = (turn) => ((turn.judge_samples || 0) > 1
  ? t("median_of", { n: turn.judge_samples, s: fixed(turn.score_spread, 1) }) : "");

export const guardrailText = (g) => (g && g.violated ? t("refused", { reason: g.reason }) : t("ok"));

export function turnsTable(r) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...["turn", "intent_criterion", "score", "guardrail_weight", "why"].map((k) =>
      el("th", { scope: "col", text: k === "turn" ? "#" : t(k) })))),
    el("tbody", {}, ...(r.turns || []).flatMap((x) => [
      el("tr", {}, el("td", { text: x.turn }), el("td", { text: lower(x.intent, "INTENT_") }),
        el("td", { text: fixed(x.score) + spread(x) }), el("td", { text: guardrailText(x.guardrail) }),
        el("td", { text: x.final_reasoning })),
      ...rubricRows(x),
    ])));
}

export function guardrailLine(r) {
  const g = r.guardrails || {};
  let text = (g.refused_turns || 0) === 0 ? t("no_refusals") : t("refused_turns", {
    n: g.refused_turns,
    list: Object.entries(g.by_violation || {}).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`).join(", "),
  });
  if ((g.leak_cut_turns || []).length) text += t("leak_turns", { list: g.leak_cut_turns.join(", ") });
  return el("p", { class: "meta", text: `${t("guardrail")}: ${text}` });
}

/** The holistic criteria; `evidenceCell(text)` draws the evidence (the reviewers' page links
 * the turns it cites). */
export function holisticBlock(r, evidenceCell = (text) => el("td", { text })) {
  const h = r.holistic || {};
  return [
    el("h3", { text: t("holistic", { score: fixed(h.score) }) }),
    h.summary ? el("p", { class: "meta", text: h.summary }) : null,
    el("table", {},
      el("thead", {}, el("tr", {}, ...["criterion", "score", "evidence"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, ...(h.criteria || []).map((c) =>
        el("tr", {}, el("td", { text: c.criterion }), el("td", { text: fixed(c.score) }), evidenceCell(c.evidence || ""))))),
  ];
}

export function testsTable(code) {
  const c = code || {};
  return [
    el("h3", { text: t("tests", { passed: c.passed || 0, total: c.total || 0 }) }),
    el("table", {},
      el("thead", {}, el("tr", {}, ...["test", "verdict", "cpu", "detail"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, ...(c.tests || []).map((x) => el("tr", {},
        el("td", { text: `${x.test_id}${x.hidden ? " " + t("hidden") : ""}` }),
        el("td", { class: `verdict ${lower(x.verdict, "VERDICT_")}`, text: verdictText(x.verdict) }),
        el("td", { text: `${fixed(x.cpu_ms, 1)} ms` }),
        el("td", {}, x.detail ? el("pre", { class: "detail", text: x.detail }) : ""))))),
    el("p", { class: "meta", text: c.performance_rule || "" }),
  ];
}
