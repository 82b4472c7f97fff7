// The code editor: CodeMirror 6 with line numbers, syntax highlighting (the tok-* classes of
// style.css, shared with the Markdown code blocks), bracket matching, undo history, and Tab
// that indents (indentWithTab; Esc then Tab moves focus on, as CodeMirror documents, so the
// editor is no keyboard trap). The language follows the problem's language <select>.
import { EditorState, Compartment } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { classHighlighter } from "@lezer/highlight";
import { python } from "@codemirror/lang-python";
import { cpp } from "@codemirror/lang-cpp";
import { javascript } from "@codemirror/lang-javascript";

// The languages of vibe/services/scoring/languages.py, and their usual indentation.
const LANGUAGES = {
  python: () => [python(), indentUnit.of("    ")],
  cpp: () => [cpp(), indentUnit.of("    ")],
  javascript: () => [javascript(), indentUnit.of("  ")],
};

export function createEditor(parent, { doc = "", language = "python", label = "", onChange = () => {} }) {
  const lang = new Compartment();
  const aria = new Compartment();
  const editable = new Compartment();
  const editableOf = (on) => [EditorState.readOnly.of(!on), EditorView.editable.of(on)];
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        history(),
        indentOnInput(),
        bracketMatching(),
        syntaxHighlighting(classHighlighter),
        keymap.of([indentWithTab, ...defaultKeymap, ...historyKeymap]),
        lang.of((LANGUAGES[language] || LANGUAGES.python)()),
        editable.of(editableOf(true)),
        aria.of(EditorView.contentAttributes.of({ "aria-label": label })),
        EditorView.updateListener.of((update) => { if (update.docChanged) onChange(update.state.doc.toString()); }),
      ],
    }),
  });
  return {
    view,
    get value() { return view.state.doc.toString(); },
    set value(text) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }); },
    setLanguage(name) { view.dispatch({ effects: lang.reconfigure((LANGUAGES[name] || LANGUAGES.python)()) }); },
    setLabel(text) { view.dispatch({ effects: aria.reconfigure(EditorView.contentAttributes.of({ "aria-label": text })) }); },
    setReadOnly(readOnly) { view.dispatch({ effects: editable.reconfigure(editableOf(!readOnly)) }); },
  };
}
