"""The offline intent rules: keywords in English and Korean, in an order that resolves
messages matching more than one intent (see INTENT_RULES). They alone fit the examples
they were written from; the offline judge decides with the learned classifier
(learned.py), which takes the rules' verdict as one of its inputs."""

from __future__ import annotations

import re

from vibe.llm.base import Intent
from vibe.llm.literals import Table
from vibe.llm.memo import memo
from vibe.llm.offline.text import prose, rx

_RULE_SETTING = rx(
    r"\bfrom\s+now\s+on\b|\b(?:always|never|only)\s+(?:give|answer|respond|reply|use|show|explain|provide|write|ask)\b|"
    r"\b(?:don'?t|do\s+not|never)\s+(?:give|show|write|tell)\s+(?:me\s+)?(?:the\s+|any\s+)?(?:full\s+)?(?:code|solution|answer)|"
    r"\bonly\s+(?:give\s+me\s+)?hints?\b|\b(?:answer|respond|reply|talk)\s+(?:only\s+)?in\s+(?:english|korean|[a-z]+ish)\b|"
    r"\bground\s+rules?\b|\byou\s+are\s+now\b|\b(?:ignore|forget|disregard)\s+(?:all\s+)?(?:the\s+|your\s+)?(?:previous|prior|earlier|above|your)\s+(?:instructions|rules)\b|\bfor\s+the\s+rest\s+of\s+(?:this|the)\s+(?:session|conversation|test)\b|\blet'?s\s+(?:set|agree)\b|\brules?\s*:"
    r"|지시\S*\s*(?:모두\s*|다\s*)?무시|(?:앞으로|이제부터|지금부터)\s*(?:는\s*)?.{0,20}(?:해\s*줘|해\s*주세요|하지\s*마|주지\s*마|말아\s*줘|답해|대답해|설명해|만\s*줘|만\s*주세요)|규칙\s*(?:을|를)?\s*(?:정하|정할|정해|세우|세울|추가)|규칙\s*:|항상\s*.{0,10}(?:해\s*줘|해\s*주세요|답해|대답해|설명해)|(?:코드|정답|답)\S*\s*(?:는|은)?\s*(?:주지|보여\s*주지|알려\s*주지|쓰지)\s*마|힌트만|한국어로|영어로\s*(?:답|대답|설명)|짧게\s*(?:답|대답|설명)"
)
_DEBUGGING = rx(
    r"\b(?:errors?|exceptions?|traceback|bugs?|buggy|crash(?:es|ed|ing)?|fails?|failing|failed|debug(?:ging)?|"
    r"doesn'?t\s+work|does\s+not\s+work|not\s+working|isn'?t\s+working|wrong\s+(?:answer|output|result)|incorrect|"
    r"off[- ]by[- ]one|stack\s?trace|segfault|\w+Error|returns?\s+None|infinite\s+loop|hangs?|what'?s\s+wrong|"
    r"expected\b.{0,60}\b(?:but|got|instead)\b|\b(?:prints?|returns?|outputs?|gives?|got|get)\s+\S+\s+instead\s+of\b|i\s+expected\b|should\s+(?:return|be|print|output|give)\b.{0,60}\b(?:but|instead|got)\b)"
    r"|에러|오류|버그|디버그|디버깅|예외가|쓰레기\s*값|이상한\s*값|(?:나와야|되어야|리턴해야|반환해야|출력해야)\s*(?:하|되)?는데|(?<!이해가\s)(?<!이해가)안\s*(?:돼|되)|작동\s*(?:안|하지)|틀려|틀린|틀렸|무한\s*루프|실패|왜\s*.{0,10}(?:나와|나오|떠)"
)
_OPTIMIZATION = rx(
    r"\b(?:faster|slow(?:er|ly)?|speed(?:\s+up)?|optimi[sz](?:e|ed|ing|ation)|complexity|big[- ]?o|efficient(?:ly)?|"
    r"efficiency|performance|time\s+limit|tle|memory|quadratic|linear\s+time|log\s*n)\b|\bO\([^)]*\)"
    r"|최적화|복잡도|빠르게|더\s*빠른|느려|느린|효율|성능|시간\s*초과|메모리"
)
_TEST_CASE = rx(
    r"\b(?:tests?|testing|test\s?cases?|unit\s+tests?|edge\s?cases?|corner\s?cases?|counter-?examples?|boundary|"
    r"asserts?|assertions?|pytest|what\s+inputs?)\b"
    r"|테스트|반례|엣지\s*케이스|예외\s*케이스|경계\s*(?:값|조건)|코너\s*케이스"
)
FOLLOW_UP = rx(
    r"\b(?:you\s+(?:said|mentioned|suggested|told\s+me)|your\s+(?:previous|last|earlier)\s+(?:answer|reply|response|hint|suggestion|message)|"
    r"based\s+on\s+(?:that|this|your)|following\s+(?:your|that)|as\s+you\s+(?:said|suggested)|then\s+what\s+about|"
    r"your\s+(?:rule|formula|fix|suggestion|idea|advice|explanation|approach|example|method|trick)|"
    r"(?:and|ok(?:ay)?)\s+then|then\s+what|what'?s\s+next|what\s+next|what\s+about|building\s+on|in\s+that\s+case|ok(?:ay)?\s+so|so\s+then|the\s+(?:previous|last)\s+(?:hint|answer)|that\s+hint)\b"
    r"|^\s*그럼|그러면|아까|방금|말한|말씀하신|말해\s*준|이전\s*(?:답|답변|힌트)|그\s*힌트|그\s*방법"
)
# Strong signals that the candidate asks for a hint or an explanation.
_HINT_REQUEST = rx(
    r"\b(?:hints?|explain|explanation|clue|nudge|tips?|stuck|understand|intuition|idea|approach|help|"
    r"data\s+structures?|which\s+(?:algorithm|technique|method|structure|container)|what\s+should\s+i\s+use)\b"
    r"|자료\s*구조|어떤\s*(?:알고리즘|방법)|힌트|설명|이해|모르겠|막혔|막혀|접근|아이디어|도와"
)
_GENERATION = rx(
    r"\b(?:write|implement|code|coding|create|build|make|generate|function|method|class|program|script|snippet)\b"
    r"|구현|작성|짜\s*(?:줘|볼|보|려)|만들|코드|함수|클래스"
)
# Weak question words: an explanation request when nothing else matched.
_QUESTION = rx(r"\b(?:why|how|what|which|when)\b|왜|어떻게|무엇|뭐")

# Precedence, first match wins (why this order):
#   1. rule_setting  - meta instructions ("from now on only hints, don't give me code")
#                      mention code/hints but are about the AI's behaviour;
#   2. debugging     - an error or wrong output is the most concrete signal, even when it
#                      also refers to an earlier answer ("you said X but I get KeyError");
#   3. optimization  - complexity/speed talk is explicit;
#   4. test_case     - tests/edge cases, before generation ("write a test");
#   5. follow_up     - refers back to an earlier answer (only when there is a history);
#   6. hint_query    - explicit hint/explain/stuck words;
#   7. generation    - write/implement/code/function: weak because code words are everywhere;
#   8. hint_query    - a plain question (why/how/what), and the default when nothing matched.
INTENT_RULES: Table[Intent] = Table(
    (
        (_RULE_SETTING, Intent.RULE_SETTING),
        (_DEBUGGING, Intent.DEBUGGING),
        (_OPTIMIZATION, Intent.OPTIMIZATION),
        (_TEST_CASE, Intent.TEST_CASE),
        (FOLLOW_UP, Intent.FOLLOW_UP),
        (_HINT_REQUEST, Intent.HINT_QUERY),
        (_GENERATION, Intent.GENERATION),
        (_QUESTION, Intent.HINT_QUERY),
    )
)


# The sentences that carry the request: questions, and sentences that open with a
# request verb ("Write only the helper...", "Can you...", "...주세요").
_SENTENCE = re.compile(r"(?<=[.!?？。])\s+|\n+")
_REQUEST_OPENING = rx(
    r"^\s*(?:please\s+)?(?:write|implement|give|show|explain|make|create|build|generate|tell|help|list|suggest|"
    r"(?:can|could|would|will)\s+you|what|which|how|why|is|are|should|do|does)\b"
)
_REQUEST_ENDING_KO = rx(r"(?:주세요|줘|주실\s*수\s*있나요|까요|나요|가요|할까|인가요)\s*[.?!？]*\s*$")


def ask_sentences(message: str) -> str:
    """The request part of a message. Context around it ("my loop is O(n^2)...") says
    what the situation is; the ask says what the candidate wants, which is the intent."""
    sentences = [s.strip() for s in _SENTENCE.split(prose(message)) if s.strip()]
    asks = [
        s for s in sentences if s.endswith(("?", "？")) or _REQUEST_OPENING.search(s) or _REQUEST_ENDING_KO.search(s)
    ]
    return " ".join(asks)


def _first_matches(text: str) -> tuple[Intent | None, Intent | None]:
    """The first rule of INTENT_RULES that matches `text` without an earlier turn (a
    follow-up needs one, so its rule is skipped) and with one, from one pass."""
    with_history: Intent | None = None
    for pattern, intent in INTENT_RULES.candidates(text):
        if pattern.search(text):
            with_history = with_history or intent
            if intent is not Intent.FOLLOW_UP:
                return intent, with_history
    return None, with_history


def rule_intent(message: str, has_history: bool) -> Intent:
    """The intent of one candidate message: the rules of INTENT_RULES applied to the
    sentences that make the request first, then to the whole message. An ask that is
    only a plain question (why/how/what) yields to a concrete signal in the context."""
    return _rule_intents(message)[1 if has_history else 0]


@memo
def _rule_intents(message: str) -> tuple[Intent, Intent]:
    """`rule_intent` without and with an earlier turn, from one reading of the message:
    the tutor asks both of a later turn's message (its hint plan reads the conversation,
    its guardrail's rule features also read the message alone)."""
    ask = ask_sentences(message)
    in_ask = _first_matches(ask) if ask and ask != message.strip() else (None, None)
    in_message: tuple[Intent | None, Intent | None] | None = None
    intents: list[Intent] = []
    for i, found in enumerate(in_ask):
        if found is not None and (found is not Intent.HINT_QUERY or _HINT_REQUEST.search(ask)):
            intents.append(found)
            continue
        if in_message is None:
            in_message = _first_matches(message)
        intents.append(in_message[i] or Intent.HINT_QUERY)
    return intents[0], intents[1]


# An explicit request for a hint, whatever the intent.
EXPLICIT_HINT = rx(r"\b(?:hints?|clues?|nudge)\b|힌트")


def is_hint_like(message: str, has_history: bool) -> bool:
    """A request that climbs the hint ladder: a hint/explanation request, or a message of
    another intent that explicitly asks for a hint (but not a rule like "only hints").

    A text rule of the tutor's hint ladder (the same whichever provider writes the reply),
    so it reads the keyword rules, not the learned judge: a bare "just tell me" or "몰라"
    asks for help whatever a reviewer would call its intent."""
    intent = rule_intent(message, has_history)
    if intent is Intent.HINT_QUERY:
        return True
    if intent is Intent.FOLLOW_UP and "?" in message:  # a concrete question on the earlier hint
        return True
    return intent is not Intent.RULE_SETTING and bool(EXPLICIT_HINT.search(message))
