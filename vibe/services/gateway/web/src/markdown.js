// Markdown for the problem statement and the tutor's replies. Both come from outside the page
// (a problem bank, a language model), so neither may inject HTML or script: markdown-it runs
// with raw HTML off (it escapes tags), and its output goes through DOMPurify anyway (defence in
// depth: no event handlers, no javascript: or data: URLs, no style or forms, and no images: a
// remote image in a reply would tell its server who reads the test, and when). Fenced code is
// highlighted with the same parsers and token classes as the editor (tok-* in style.css).
import MarkdownIt from "markdown-it";
import DOMPurify from "dompurify";
import { classHighlighter, highlightCode } from "@lezer/highlight";
import { pythonLanguage } from "@codemirror/lang-python";
import { cppLanguage } from "@codemirror/lang-cpp";
import { javascriptLanguage } from "@codemirror/lang-javascript";

// A fence's info string -> the parser (the names candidates and models write).
const PARSERS = {
  python: pythonLanguage.parser, py: pythonLanguage.parser, python3: pythonLanguage.parser,
  cpp: cppLanguage.parser, "c++": cppLanguage.parser, cc: cppLanguage.parser, c: cppLanguage.parser, h: cppLanguage.parser, hpp: cppLanguage.parser,
  javascript: javascriptLanguage.parser, js: javascriptLanguage.parser, node: javascriptLanguage.parser, mjs: javascriptLanguage.parser,
};

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** `code` as HTML with <span class="tok-..."> tokens ("" when the language is unknown). */
export function highlight(code, language) {
  const parser = PARSERS[(language || "").trim().toLowerCase()];
  if (!parser) return "";
  let html = "";
  highlightCode(code, parser.parse(code), classHighlighter,
    (text, classes) => { html += classes ? `<span class="${classes}">${escapeHtml(text)}</span>` : escapeHtml(text); },
    () => { html += "\n"; });
  return html;
}

const md = new MarkdownIt({
  html: false, // tags in the text are shown as text
  linkify: true,
  breaks: true, // a chat reply's single newlines are line breaks
  highlight: (code, info) => {
    const html = highlight(code, info.split(/\s+/)[0]);
    return html ? `<pre class="code"><code class="language-${escapeHtml(info.split(/\s+/)[0])}">${html}</code></pre>` : "";
  },
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["img", "picture", "video", "audio", "source", "style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed", "svg", "math"],
  FORBID_ATTR: ["style", "srcset"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
};

// Links leave the test in a new tab and never get the page's window.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Safe HTML for `text` (Markdown). */
export function renderMarkdown(text) {
  return DOMPurify.sanitize(md.render(text || ""), PURIFY);
}

/** Renders `text` into `element`. */
export function renderInto(element, text) {
  element.innerHTML = renderMarkdown(text);
}

/** Renders a growing text (a streamed reply) at most once per animation frame: each chunk only
 * records the text; the frame renders the latest (re-parsing the whole reply, so a fence or a
 * list that is still open renders as far as it goes). `flush()` renders now (the last chunk). */
export function streamingRenderer(element) {
  let text = "";
  let scheduled = 0;
  const draw = () => { scheduled = 0; renderInto(element, text); };
  return {
    update(next) {
      text = next;
      if (!scheduled) scheduled = requestAnimationFrame(draw);
    },
    flush() {
      if (scheduled) cancelAnimationFrame(scheduled);
      draw();
    },
  };
}
