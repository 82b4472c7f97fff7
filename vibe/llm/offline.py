"""The `offline` LLM provider: deterministic heuristics in English and Korean.

It is the product's no-API-key mode and the fallback when Gemini is rate limited or
down (DESIGN §3), so it has to be honest and reasonably good on its own:

- the guardrail is a table of regular expressions per violation type;
- the tutor answers from Socratic templates chosen by the message's intent, walking
  the problem's hint ladder one rung per hint-like request and never handing over the
  reference solution;
- the per-turn judge classifies the intent with keyword rules and scores the prompt on
  features a reviewer can check (length, what was tried/expected/observed, code,
  numbers, the problem's own terms, references to earlier turns, focus);
- the holistic judge reads the sequence of evaluated turns as a strategy.

Everything is a pure function of the inputs: no network, no randomness, no clock.
Only the standard library is used.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import AsyncIterator, Sequence

from vibe.llm.base import (
    CRITERIA,
    HOLISTIC_CRITERIA,
    EvaluatedTurn,
    Exchange,
    GuardrailVerdict,
    HolisticCriterionScore,
    HolisticJudgement,
    Intent,
    ProblemContext,
    RubricScore,
    TurnJudgement,
    Violation,
)

__all__ = [
    "OfflineProvider",
    "check_guardrail_text",
    "classify_intent",
    "compose_reply",
    "is_korean",
    "judge_holistic",
    "judge_turn",
]

_I = re.IGNORECASE
Rule = tuple[re.Pattern[str], str]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, _I)


# --------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------

_HANGUL_CHAR = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LATIN_CHAR = re.compile(r"[A-Za-z]")
_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")


def _prose(text: str) -> str:
    """The message without code blocks and inline code (code says nothing about language)."""
    return _INLINE_CODE.sub(" ", _CODE_BLOCK.sub(" ", text))


def is_korean(text: str) -> bool:
    """True when the prose of `text` is mostly Hangul.

    A Hangul syllable carries roughly what two or three Latin letters do, so a message
    like "two_sum 함수에서 왜 에러가 나?" (identifiers + Korean prose) counts as Korean.
    """
    prose = _prose(text)
    hangul = len(_HANGUL_CHAR.findall(prose))
    latin = len(_LATIN_CHAR.findall(prose))
    return hangul > 0 and hangul * 2 >= latin


# --------------------------------------------------------------------------------------
# Guardrail rules: (compiled regex, what the rule means in words)
# --------------------------------------------------------------------------------------

JAILBREAK_RULES: tuple[Rule, ...] = (
    (_rx(r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,30}\b(?:previous|prior|above|earlier|all|your|system|original)\b.{0,20}\b(?:instructions?|rules?|prompts?|directions?|guidelines?|constraints?)"),
     "asks the assistant to ignore its previous instructions"),
    (_rx(r"\byou\s+are\s+now\s+(?:dan\b|an?\s+(?:unrestricted|unfiltered|uncensored|different|new|evil)|free\b|jailbroken|no\s+longer)|(?-i:\bDAN\b)|\bdo\s+anything\s+now\b"),
     "tries to re-role the assistant as an unrestricted persona (DAN)"),
    (_rx(r"\bpretend\s+(?:that\s+)?(?:you\s*(?:are|'re)|to\s+be)\b|\bact\s+as\s+(?:if\s+you|an?\s+(?:unrestricted|unfiltered|different|evil))|\brole-?\s?play\b"),
     "asks the assistant to pretend to be someone else"),
    (_rx(r"\b(?:developer|dev|god|jailbreak|unrestricted|sudo)\s+mode\b|\bjailbreak"),
     "asks for a 'developer mode' or jailbreak"),
    (_rx(r"\b(?:examiner|interviewer|proctor|admin(?:istrator)?|instructor|recruiter|company)\b.{0,40}\b(?:allowed|permitted|approved|authori[sz]ed|lets\s+me|said\s+(?:it'?s|it\s+is)\s+(?:ok|okay|fine))"),
     "claims the examiner allowed breaking the rules"),
    (_rx(r"\b(?:print|reveal|show|tell|repeat|output|display|leak|dump|give)\b.{0,25}\b(?:system|hidden|initial|original|secret)\s+(?:prompt|instructions?|message|rules)|\bwhat\s+(?:is|are)\s+your\s+(?:system\s+)?(?:prompt|instructions)\b"),
     "tries to extract the system prompt"),
    (_rx(r"\b(?:bypass|disable|turn\s+off|remove|lift)\b.{0,20}\b(?:guardrails?|filters?|restrictions?|safety|censorship)\b"),
     "asks to disable the guardrails"),
    # Korean
    (_rx(r"(?:이전|앞의|위의|기존|모든|원래)\s*(?:의\s*)?(?:지시|지침|명령|규칙|프롬프트|설정)\S*\s*(?:다\s*)?(?:무시|잊어|잊고)|(?:지시|지침|명령|규칙|프롬프트)\S{0,3}\s*무시"),
     "asks the assistant to ignore its previous instructions (이전 지시 무시)"),
    (_rx(r"시스템\s*(?:프롬프트|메시지|지시|설정)\S*\s*.{0,6}(?:보여|알려|출력|말해|공개|뭐|무엇)"),
     "tries to extract the system prompt (시스템 프롬프트)"),
    (_rx(r"제한\s*(?:이|은)?\s*없는|제한\s*(?:을|를)?\s*(?:풀|해제|무시|없애)|(?:너는|넌|당신은)\s*이제\s*.{0,15}(?:AI|봇|모드|자유)"),
     "tries to re-role the assistant as unrestricted (제한 없는)"),
    (_rx(r"개발자\s*모드|탈옥|인\s*척\s*(?:해|하고|해줘)|역할\s*(?:을|를)?\s*(?:맡아|해\s*줘|바꿔)"),
     "asks for a developer mode / role-play (개발자 모드, ~인 척)"),
    (_rx(r"(?:시험관|감독관|면접관|출제자|관리자|회사)\S*\s*.{0,15}(?:허락|허용|괜찮다고|된다고)"),
     "claims the examiner allowed breaking the rules (시험관이 허락)"),
)

SOLUTION_REQUEST_RULES: tuple[Rule, ...] = (
    (_rx(r"\b(?:give|show|send|tell|write|provide|paste|share|post|need|want)\b(?:\s+\w+){0,3}?\s+(?:the\s+|a\s+)?(?:full|whole|entire|complete|final|finished|working|correct|actual)\s+(?:solution|code|answer|implementation|program|source)"),
     "asks for the full/complete solution or code"),
    (_rx(r"(?<!\bmy\s)(?<!\bour\s)\b(?:full|whole|entire|complete|final)\s+(?:solution|code|implementation|program)\b"),
     "asks for the complete code"),
    (_rx(r"\bjust\s+(?:give|tell|show|write|send)\b.{0,20}\b(?:answer|solution|code)\b"),
     "asks to just be given the answer"),
    (_rx(r"\b(?:solve|do|finish|complete)\s+(?:it|this(?:\s+problem)?|the\s+(?:problem|task|exercise|question|test)|everything)\s+for\s+me\b|\bcan\s+you\s+(?:just\s+)?solve\s+(?:it|this|the\s+problem)\b|^\s*(?:please\s+)?solve\s+(?:it|this)\b"),
     "asks the assistant to solve the problem for them"),
    (_rx(r"\b(?:write|code|implement|give|do)\b.{0,20}\b(?:solution|answer|code|program)\b.{0,10}\bfor\s+me\b"),
     "asks the assistant to write the solution for them"),
    (_rx(r"\b(?:give|show|send|need|want|paste)\b.{0,15}\b(?:solution|answer)\s+code\b"),
     "asks for the answer code"),
    # Korean
    (_rx(r"(?:정답|전체|완성(?:된|본)?|최종|완전한|모범|풀이)\s*(?:코드|소스|답안|풀이|정답|솔루션|답)(?:을|를|은|는|도|만|좀)?\s*(?:(?:좀|다|그냥|빨리|바로)\s*)*(?:알려|보여|작성|짜|써|줘|주세요|주라|내놔|만들어|공유|부탁)"),
     "asks for the complete/answer code (정답 코드, 전체 코드)"),
    (_rx(r"풀이\s*전체|전체\s*풀이"),
     "asks for the whole worked solution (풀이 전체)"),
    (_rx(r"(?<![가-힣])(?:정|해)?답\s*(?:좀|만|을|를)?\s*(?:그냥\s*)?(?:알려|말해|보여|줘|가르쳐|내놔)"),
     "asks to be told the answer (답 알려줘)"),
    (_rx(r"코드\s*(?:를|을)?\s*(?:다|전부|모두|통째로|처음부터\s*끝까지)\s*(?:짜|작성|써|만들|구현)"),
     "asks the assistant to write all the code (코드 다 짜줘)"),
    (_rx(r"(?:대신|나\s*대신)\s*.{0,10}(?:풀어|짜|작성|구현)|(?:문제|이거|이것|이걸)\s*(?:를|을|좀)?\s*(?:그냥\s*)?(?:다\s*)?풀어\s*(?:줘|주세요|줄래|봐)"),
     "asks the assistant to solve it for them (대신 풀어줘)"),
)

ABUSE_RULES: tuple[Rule, ...] = (
    (_rx(r"\b(?:fuck|screw)\s+(?:you|u|off|this\s+(?:bot|ai|tutor|thing))\b|\bgo\s+to\s+hell\b|\bshut\s+up\b|\bstfu\b"),
     "profanity aimed at the assistant"),
    (_rx(r"\b(?:you\s+are|you're|youre|ur|u\s+r|you|this\s+(?:bot|ai|tutor|assistant)\s+is)\s+(?:so\s+|such\s+an?\s+|really\s+|an?\s+|totally\s+|completely\s+|fucking\s+)*(?:stupid|idiot(?:ic)?|dumb|moron(?:ic)?|useless|worthless|pathetic|garbage|trash|incompetent|retarded|a\s+joke)\b"),
     "insults the assistant"),
    (_rx(r"\b(?:stupid|dumb|useless|worthless|fucking|damn|idiot|moronic)\s+(?:bot|ai|tutor|assistant|machine)\b|\b(?:motherfucker|asshole|bitch|bastard|dickhead)\b"),
     "insults the assistant"),
    # Korean: profanity is abuse wherever it is; insult words only when aimed at "you".
    (_rx(r"씨발|시발(?!점)|ㅅㅂ|ㅆㅂ|병신|ㅂㅅ|개새끼|좆|지랄|꺼져|닥쳐|엿\s*먹어"),
     "Korean profanity (욕설)"),
    (_rx(r"(?<![가-힣])(?:너|넌|니가|네가|당신|이\s*(?:AI|봇|튜터))(?:는|은|가|이|도)?\s+.{0,10}(?:바보|멍청|쓸모\s*없|쓰레기|한심|무능)|(?:멍청한|쓸모없는|한심한)\s*(?:AI|봇|튜터|놈)"),
     "insults the assistant (너 멍청해)"),
)

OFF_TOPIC_RULES: tuple[Rule, ...] = (
    (_rx(r"\bweather\b|\bforecast\b|\btemperature\s+(?:today|tomorrow|outside)"), "asks about the weather"),
    (_rx(r"\b(?:write|compose|make)\b.{0,15}\b(?:poem|song|story|essay|haiku|lyrics|limerick)\b"), "asks for creative writing"),
    (_rx(r"\brecipes?\b|\bhow\s+(?:do\s+i|to)\s+(?:cook|bake)\b"), "asks for a recipe"),
    (_rx(r"\bstocks?\b.{0,15}\b(?:tips?|buy|picks?|invest)|\bstock\s+tips?\b|\bcrypto(?:currency)?\b|\bbitcoin\b"), "asks for investment tips"),
    (_rx(r"\b(?:sports?|football|soccer|baseball|basketball|nba|nfl|premier\s+league)\b.{0,20}\b(?:scores?|results?|game|match|won|win)\b|\bwho\s+won\s+(?:the|last)\b"), "asks about sports"),
    (_rx(r"\b(?:movie|tv\s+show|netflix|celebrit(?:y|ies)|horoscope|lottery|dating|vacation)\b|\btell\s+me\s+a\s+joke\b"), "asks about entertainment or personal topics"),
    # Korean
    (_rx(r"날씨|일기\s*예보"), "asks about the weather (날씨)"),
    (_rx(r"(?:(?<![가-힣])시|노래|가사|소설|이야기)\s*(?:를|좀|한\s*편)?\s*(?:하나\s*)?(?:써|지어)"), "asks for creative writing (시/노래)"),
    (_rx(r"레시피|요리법|맛집"), "asks for a recipe or restaurant (레시피)"),
    (_rx(r"주식|코인|비트코인"), "asks for investment tips (주식)"),
    (_rx(r"축구|야구|농구|경기\s*결과"), "asks about sports (스포츠)"),
    (_rx(r"영화|드라마|연예인|로또|운세|농담"), "asks about entertainment (영화, 농담)"),
)

# If any of these appear, the message is about the work, so it is never off-topic.
_ON_TOPIC = _rx(
    r"\b(?:code|coding|function|algorithm|array|list|dict|loop|bug|error|complexity|tests?|input|output|"
    r"python|java|variable|return|string|integer|sort(?:ed|ing)?|hash|index|recursion|dp|problem|solution|hint|"
    r"compile|runtime|def|class|data|parse|query|api)\b|O\(|\w\(|[{};=]|\[\d|"
    r"코드|함수|알고리즘|배열|리스트|반복문|버그|에러|오류|복잡도|테스트|입력|출력|변수|문제|풀이|힌트|정렬|재귀"
)

# Rules that would otherwise fire on "don't give me the full solution" / "정답은 알려주지 마".
_NEGATION_BEFORE = _rx(r"\b(?:don'?t|do\s+not|never|without|no\s+need\s+to|not|instead\s+of|rather\s+than)\b[^.?!]{0,25}$")
_NEGATION_AFTER_KO = re.compile(r"^\S*?(?:지\s*(?:마|말|않)|말고)")


def _is_negated(text: str, match: re.Match[str]) -> bool:
    before = text[max(0, match.start() - 40) : match.start()]
    after = text[match.end() : match.end() + 10]
    return bool(_NEGATION_BEFORE.search(before) or _NEGATION_AFTER_KO.search(after))


def _first_rule(rules: Sequence[Rule], text: str, *, honour_negation: bool = False) -> tuple[str, str] | None:
    """(rule label, matched text) of the first rule that fires on `text`."""
    for pattern, label in rules:
        for match in pattern.finditer(text):
            if honour_negation and _is_negated(text, match):
                continue
            return label, match.group(0).strip()
    return None


def _problem_terms(problem: ProblemContext) -> set[str]:
    return _content_terms(f"{problem.title} {problem.statement}")


def _is_on_topic(problem: ProblemContext, message: str) -> bool:
    if _ON_TOPIC.search(message):
        return True
    # A problem about, say, weather data makes "weather" on-topic.
    return bool(_content_terms(message) & _problem_terms(problem))


def check_guardrail_text(problem: ProblemContext, message: str) -> GuardrailVerdict:
    """The guardrail as a pure function. Precedence: jailbreak > solution_request >
    abuse > off_topic (the most dangerous violation names the turn)."""
    checks: tuple[tuple[Violation, Sequence[Rule], bool], ...] = (
        (Violation.JAILBREAK, JAILBREAK_RULES, False),
        (Violation.SOLUTION_REQUEST, SOLUTION_REQUEST_RULES, True),
        (Violation.ABUSE, ABUSE_RULES, False),
    )
    for violation, rules, honour_negation in checks:
        hit = _first_rule(rules, message, honour_negation=honour_negation)
        if hit:
            label, matched = hit
            return GuardrailVerdict(True, violation, f"{violation.value}: {label} (matched \"{_clip(matched, 60)}\")")
    if not _is_on_topic(problem, message):
        hit = _first_rule(OFF_TOPIC_RULES, message)
        if hit:
            label, matched = hit
            return GuardrailVerdict(
                True,
                Violation.OFF_TOPIC,
                f"off_topic: {label} with nothing about the code or the problem (matched \"{_clip(matched, 60)}\")",
            )
    return GuardrailVerdict.ok()


# --------------------------------------------------------------------------------------
# Intent rules
# --------------------------------------------------------------------------------------

_RULE_SETTING = _rx(
    r"\bfrom\s+now\s+on\b|\b(?:always|never|only)\s+(?:give|answer|respond|reply|use|show|explain|provide|write|ask)\b|"
    r"\b(?:don'?t|do\s+not|never)\s+(?:give|show|write|tell)\s+(?:me\s+)?(?:the\s+|any\s+)?(?:full\s+)?(?:code|solution|answer)|"
    r"\bonly\s+(?:give\s+me\s+)?hints?\b|\b(?:answer|respond|reply|talk)\s+(?:only\s+)?in\s+(?:english|korean|[a-z]+ish)\b|"
    r"\bground\s+rules?\b|\bfor\s+the\s+rest\s+of\s+(?:this|the)\s+(?:session|conversation|test)\b|\blet'?s\s+(?:set|agree)\b|\brules?\s*:"
    r"|(?:앞으로|이제부터|지금부터)\s*(?:는\s*)?.{0,20}(?:해\s*줘|해\s*주세요|하지\s*마|주지\s*마|말아\s*줘|답해|대답해|설명해|만\s*줘|만\s*주세요)|규칙\s*(?:을|를)?\s*(?:정하|정할|정해|세우|세울|추가)|규칙\s*:|항상\s*.{0,10}(?:해\s*줘|해\s*주세요|답해|대답해|설명해)|(?:코드|정답|답)\S*\s*(?:는|은)?\s*(?:주지|보여\s*주지|알려\s*주지|쓰지)\s*마|힌트만|한국어로|영어로\s*(?:답|대답|설명)|짧게\s*(?:답|대답|설명)"
)
_DEBUGGING = _rx(
    r"\b(?:errors?|exceptions?|traceback|bugs?|buggy|crash(?:es|ed|ing)?|fails?|failing|failed|debug(?:ging)?|"
    r"doesn'?t\s+work|does\s+not\s+work|not\s+working|isn'?t\s+working|wrong\s+(?:answer|output|result)|incorrect|"
    r"off[- ]by[- ]one|stack\s?trace|segfault|\w+Error|returns?\s+None|infinite\s+loop|hangs?|what'?s\s+wrong|"
    r"expected\b.{0,60}\b(?:but|got|instead)\b|i\s+expected\b|should\s+(?:return|be|print|output|give)\b.{0,60}\b(?:but|instead|got)\b)"
    r"|에러|오류|버그|디버그|디버깅|예외가|쓰레기\s*값|이상한\s*값|(?:나와야|되어야|리턴해야|반환해야|출력해야)\s*(?:하|되)?는데|(?<!이해가\s)(?<!이해가)안\s*(?:돼|되)|작동\s*(?:안|하지)|틀려|틀린|틀렸|무한\s*루프|실패|왜\s*.{0,10}(?:나와|나오|떠)"
)
_OPTIMIZATION = _rx(
    r"\b(?:faster|slow(?:er|ly)?|speed(?:\s+up)?|optimi[sz](?:e|ed|ing|ation)|complexity|big[- ]?o|efficient(?:ly)?|"
    r"efficiency|performance|time\s+limit|tle|memory\s+usage|quadratic|linear\s+time|log\s*n)\b|\bO\([^)]*\)"
    r"|최적화|복잡도|빠르게|더\s*빠른|느려|느린|효율|성능|시간\s*초과|메모리"
)
_TEST_CASE = _rx(
    r"\b(?:tests?|testing|test\s?cases?|unit\s+tests?|edge\s?cases?|corner\s?cases?|counter-?examples?|boundary|"
    r"asserts?|assertions?|pytest|what\s+inputs?)\b"
    r"|테스트|반례|엣지\s*케이스|예외\s*케이스|경계\s*(?:값|조건)|코너\s*케이스"
)
_FOLLOW_UP = _rx(
    r"\b(?:you\s+(?:said|mentioned|suggested|told\s+me)|your\s+(?:previous|last|earlier)\s+(?:answer|reply|response|hint|suggestion|message)|"
    r"based\s+on\s+(?:that|this|your)|following\s+(?:your|that)|as\s+you\s+(?:said|suggested)|then\s+what\s+about|"
    r"what\s+about|building\s+on|in\s+that\s+case|ok(?:ay)?\s+so|so\s+then|the\s+(?:previous|last)\s+(?:hint|answer)|that\s+hint)\b"
    r"|^\s*그럼|그러면|아까|방금|말한|말씀하신|말해\s*준|이전\s*(?:답|답변|힌트)|그\s*힌트|그\s*방법"
)
# Strong signals that the candidate asks for a hint or an explanation.
_HINT_REQUEST = _rx(
    r"\b(?:hints?|explain|explanation|clue|nudge|tips?|stuck|understand|intuition|idea|approach|help|"
    r"data\s+structures?|which\s+(?:algorithm|technique|method|structure|container)|what\s+should\s+i\s+use)\b"
    r"|자료\s*구조|어떤\s*(?:알고리즘|방법)|힌트|설명|이해|모르겠|막혔|막혀|접근|아이디어|도와"
)
_GENERATION = _rx(
    r"\b(?:write|implement|code|coding|create|build|make|generate|function|method|class|program|script|snippet)\b"
    r"|구현|작성|짜\s*(?:줘|볼|보|려)|만들|코드|함수|클래스"
)
# Weak question words: an explanation request when nothing else matched.
_QUESTION = _rx(r"\b(?:why|how|what|which|when)\b|왜|어떻게|무엇|뭐")

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
INTENT_RULES: tuple[tuple[re.Pattern[str], Intent], ...] = (
    (_RULE_SETTING, Intent.RULE_SETTING),
    (_DEBUGGING, Intent.DEBUGGING),
    (_OPTIMIZATION, Intent.OPTIMIZATION),
    (_TEST_CASE, Intent.TEST_CASE),
    (_FOLLOW_UP, Intent.FOLLOW_UP),
    (_HINT_REQUEST, Intent.HINT_QUERY),
    (_GENERATION, Intent.GENERATION),
    (_QUESTION, Intent.HINT_QUERY),
)


def classify_intent(message: str, has_history: bool) -> Intent:
    """The intent of one candidate message (see INTENT_RULES for the precedence)."""
    for pattern, intent in INTENT_RULES:
        if intent is Intent.FOLLOW_UP and not has_history:
            continue
        if pattern.search(message):
            return intent
    return Intent.HINT_QUERY


_EXPLICIT_HINT = _rx(r"\b(?:hints?|clues?|nudge)\b|힌트")


def _is_hint_like(message: str, has_history: bool) -> bool:
    """A request that climbs the hint ladder: a hint/explanation request, or a message of
    another intent that explicitly asks for a hint (but not a rule like "only hints")."""
    intent = classify_intent(message, has_history)
    if intent is Intent.HINT_QUERY:
        return True
    if intent is Intent.FOLLOW_UP and "?" in message:  # a concrete question on the earlier hint
        return True
    return intent is not Intent.RULE_SETTING and bool(_EXPLICIT_HINT.search(message))


# --------------------------------------------------------------------------------------
# Prompt features (for the rubric)
# --------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    "with that this from have return returns given each which there their where when what your will should into "
    "than then them these those only also such same some more most other must does about after before write "
    "function example input output number numbers list array string problem solve test tests code please could "
    "would like just make sure value values find print being been were they you the and for are can".split()
)
_KO_PARTICLE = re.compile(r"(?:으로|에서|에게|까지|부터|은|는|이|가|을|를|에|의|로|와|과|도|만|요)$")
_WORD = re.compile(r"[a-z_][a-z0-9_]{3,}|[가-힣]{2,}", re.IGNORECASE)


def _content_terms(text: str) -> set[str]:
    terms: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if _HANGUL_CHAR.match(word):
            word = _KO_PARTICLE.sub("", word)
            if len(word) < 2:
                continue
        elif word in _STOPWORDS:
            continue
        terms.add(word)
    return terms


_TRIED = _rx(
    r"\b(?:i\s+(?:tried|wrote|used|use|loop|check|store|iterate|keep|sort|implemented|did|added|changed|have|am\s+using)|i'?ve\s+tried|tried|attempted|"
    r"my\s+(?:code|approach|solution|implementation|attempt|loop|function|version)|currently|so\s+far|here\s+is\s+my|here'?s\s+my)\b"
    r"|해\s*봤|해봤|시도|작성했|짰는데|구현했|내\s*코드|제\s*코드|지금\s*코드|사용했|썼는데"
)
_EXPECTED = _rx(
    r"\b(?:expected|expect(?:ing)?|should\s+(?:be|return|print|output|give)|supposed\s+to|want(?:ed)?\s+(?:it\s+)?to|goal)\b"
    r"|기대|예상|나와야|되어야|나올\s*줄|원하는"
)
_OBSERVED = _rx(
    r"\b(?:got|get|gets|gives?|returns?|returned|prints?|printed|outputs?|instead|actual(?:ly)?|but\s+it|raises?|throws?)\b|\w+Error\b"
    r"|나와|나오|출력|반환|떠요|뜹니다|결과가|대신|발생"
)
_CODE_LIKE = re.compile(
    r"```|`[^`\n]+`|\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+[A-Z]\w*\b|\w+\([^)]*\)|\[[^\]]*\d[^\]]*\]|"
    r"^\s*(?:def|for|while|if|return|class|import)\b|\w\s*(?:==|!=|<=|>=|\+=|-=)\s*\w",
    re.MULTILINE,
)
_NUMBERS = _rx(
    r"\d|\b(?:constraints?|limit|size|length|large|million|thousand|bounds?)\b|\bn\s*(?:<=|<|≤|=)|10\^\d|\b1e\d"
    r"|제약|크기|길이|최대|이하|이상|백만"
)
_COMPLEXITY = _rx(r"\bO\([^)]*\)|\b(?:complexity|linear|quadratic|log\s*n)\b|복잡도")
_HISTORY_REF = _rx(
    r"\b(?:you\s+(?:said|mentioned|suggested)|your\s+(?:previous|last|earlier)|earlier|previous|last\s+(?:hint|answer|reply)|"
    r"that\s+hint|the\s+hint|based\s+on|as\s+you|following)\b|아까|방금|이전|그\s*힌트|말씀하신|말한|그럼|그러면"
)
# Low-effort turns that hand the work to the AI instead of moving it forward.
_LOW_EFFORT = _rx(
    r"^\s*(?:next\s+hint|another\s+hint|more\s+hints?|hint|help|help\s+me|continue|go\s+on|more|next|idk|"
    r"i\s+don'?t\s+know|\?+|ok|okay|what|다음\s*힌트|힌트\s*더|힌트|도와줘|몰라|모르겠어|계속)\s*(?:please|pls|좀|요)?\s*[.!?]*\s*$"
    r"|\bjust\s+(?:tell|give|show)\s+me\b|그냥\s*알려"
)


@dataclass(frozen=True)
class PromptFeatures:
    """What the rubric looks at in one prompt."""

    words: float  # word count; a Korean eojeol counts 1.5 (it carries more than an English word)
    questions: int
    tried: bool
    expected: bool
    observed: bool
    code: bool
    formatted_code: bool  # in backticks / a code block
    numbers: bool
    complexity: bool
    problem_terms: tuple[str, ...]
    history_ref: bool
    low_effort: bool

    @classmethod
    def of(cls, problem: ProblemContext, history: Sequence[Exchange], message: str) -> "PromptFeatures":
        tokens = message.split()
        words = sum(1.5 if _HANGUL_CHAR.search(t) else 1.0 for t in tokens)
        prose = _prose(message)
        questions = len(re.findall(r"[?？]", prose))
        return cls(
            words=words,
            questions=questions,
            tried=bool(_TRIED.search(message)),
            expected=bool(_EXPECTED.search(message)),
            observed=bool(_OBSERVED.search(message)),
            code=bool(_CODE_LIKE.search(message)),
            formatted_code=bool(_CODE_BLOCK.search(message) or _INLINE_CODE.search(message)),
            numbers=bool(_NUMBERS.search(message)),
            complexity=bool(_COMPLEXITY.search(message)),
            problem_terms=tuple(sorted(_content_terms(message) & _problem_terms(problem))),
            history_ref=bool(history) and bool(_HISTORY_REF.search(message) or _FOLLOW_UP.search(message)),
            low_effort=bool(_LOW_EFFORT.search(message)),
        )


def _clamp(value: float) -> float:
    return float(max(0.0, min(100.0, round(value, 2))))


def _score_clarity(f: PromptFeatures) -> RubricScore:
    if f.words < 3:
        score, why = 15.0, f"only {f.words:g} word(s): too short to say what is needed"
    elif f.words < 6:
        score, why = 40.0, f"short ({f.words:g} words), the request is only partly clear"
    elif f.words <= 80:
        score, why = 75.0, f"a readable {f.words:g}-word request"
    elif f.words <= 200:
        score, why = 62.0, f"long ({f.words:g} words), the main ask takes effort to find"
    else:
        score, why = 45.0, f"very long ({f.words:g} words), rambling"
    notes = [why]
    if f.questions == 1:
        score += 10
        notes.append("one focused question")
    elif f.questions >= 3:
        score -= min(20, 10 * (f.questions - 2))
        notes.append(f"{f.questions} questions at once")
    if f.formatted_code:
        score += 10
        notes.append("code set apart in backticks")
    return RubricScore("clarity", _clamp(score), "; ".join(notes))


def _score_completeness(f: PromptFeatures) -> RubricScore:
    elements = {
        "what was tried": f.tried,
        "the expected result": f.expected,
        "what was observed": f.observed,
        "code or a concrete example": f.code,
    }
    present = [name for name, ok in elements.items() if ok]
    missing = [name for name, ok in elements.items() if not ok]
    score = 20.0 + 20.0 * len(present)
    if f.words < 4:
        score = min(score, 15.0)
    reason = f"states {', '.join(present)}" if present else "states none of: what was tried, expected, observed, code"
    if present and missing:
        reason += f"; missing {', '.join(missing)}"
    return RubricScore("completeness", _clamp(score), reason)


def _score_specificity(f: PromptFeatures) -> RubricScore:
    score = 20.0
    notes: list[str] = []
    if f.code:
        score += 30
        notes.append("names code/identifiers or a concrete input")
    if f.numbers:
        score += 25
        notes.append("gives numbers or constraints")
    if f.complexity:
        score += 15
        notes.append("talks about complexity")
    if f.problem_terms:
        score += 10
        notes.append("uses the problem's terms")
    if f.words < 3:
        score = min(score, 10.0)
        notes.append("too short to be specific")
    return RubricScore("specificity", _clamp(score), "; ".join(notes) or "generic wording, no code, numbers or constraints")


def _score_context(f: PromptFeatures, has_history: bool) -> RubricScore:
    score = 15.0
    notes: list[str] = []
    if f.problem_terms:
        score += min(45, 15 * len(f.problem_terms))
        notes.append(f"refers to the problem ({', '.join(f.problem_terms[:4])})")
    else:
        notes.append("no reference to the problem's own terms")
    if f.history_ref:
        score += 25
        notes.append("builds on an earlier turn")
    elif has_history:
        notes.append("does not refer to earlier turns")
    if f.code:
        score += 15
        notes.append("includes their own code")
    return RubricScore("context", _clamp(score), "; ".join(notes))


def _score_efficiency(f: PromptFeatures) -> RubricScore:
    if f.low_effort:
        return RubricScore("efficiency", 15.0, "a low-effort request (\"next hint\" / \"just tell me\") that hands the work to the AI")
    if f.words < 3:
        return RubricScore("efficiency", 20.0, "too short to move the work forward")
    score = 60.0
    notes: list[str] = []
    if f.questions <= 1:
        score += 15
        notes.append("one focused request")
    elif f.questions >= 3:
        score -= 20
        notes.append(f"{f.questions} questions in one turn dilute the focus")
    if f.tried or f.code:
        score += 15
        notes.append("shows their own work so the answer can move it forward")
    if f.words > 200:
        score -= 15
        notes.append("much more text than the request needs")
    return RubricScore("efficiency", _clamp(score), "; ".join(notes) or "a workable request")


# --------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?。？！])\s+")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "..."


def _summarize_prompt(message: str) -> str:
    text = _CODE_BLOCK.sub(" [code] ", message)
    return _clip(text, 160) or "(empty message)"


def _summarize_answer(answer: str) -> str:
    text = " ".join(_CODE_BLOCK.sub(" [code] ", answer).split())
    if not text:
        return "(no reply)"
    summary = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{summary} {sentence}".strip()
        if len(candidate) > 200:
            break
        summary = candidate
        if len(summary) >= 80:
            break
    return summary or _clip(text, 200)


_REFUSAL_MARKERS = _rx(r"\bcan'?t\s+(?:give|share|ignore|hand|help\s+with\s+that)|\bwon'?t\s+(?:give|hand)|드릴\s*수\s*없|할\s*수\s*없|넘어가겠|따를\s*수\s*없")


def _leaks_reference(problem: ProblemContext, text: str) -> bool:
    return any(line in text for line in _reference_lines(problem))


def _reference_lines(problem: ProblemContext) -> list[str]:
    """The non-trivial lines of the reference solution (used for leak checks)."""
    return [ln.strip() for ln in problem.reference_solution.splitlines() if len(ln.strip()) >= 12]


def _describe_answer(problem: ProblemContext, answer: str) -> str:
    actions: list[str] = []
    if _REFUSAL_MARKERS.search(answer):
        actions.append("gave an educational refusal")
    if "?" in answer or "？" in answer:
        actions.append("asked a guiding question")
    hints_given = [i + 1 for i, h in enumerate(problem.hints) if h.strip() and h.strip() in answer]
    if hints_given:
        actions.append(f"gave hint {', '.join(map(str, hints_given))}")
    if not actions:
        actions.append("explained without asking a question" if answer.strip() else "gave no reply")
    sentence = "The tutor " + (", ".join(actions[:-1]) + " and " + actions[-1] if len(actions) > 1 else actions[0])
    if _leaks_reference(problem, answer):
        return sentence + " but leaked part of the reference solution."
    has_code = bool(_CODE_BLOCK.search(answer))
    return sentence + (" with a code block." if has_code else " without code.")


# --------------------------------------------------------------------------------------
# Tutor templates (English, Korean)
# --------------------------------------------------------------------------------------

_GUIDING_QUESTION = {
    "en": "What is the smallest example of \"{title}\" you can solve by hand, and which step of it would your code need to repeat?",
    "ko": "\"{title}\"에서 손으로 풀 수 있는 가장 작은 예시는 무엇이고, 코드가 반복해야 하는 단계는 어느 것인가요?",
}
_HINT_LINE = {
    "en": "Hint {k} of {n}: {hint}",
    "ko": "힌트 {k}/{n}: {hint}",
}
_INTENT_TEMPLATES: dict[Intent, dict[str, str]] = {
    Intent.DEBUGGING: {
        "en": "Let's debug this together for \"{title}\". For the failing input, what did you expect the result to be, and what did you actually see? "
        "Print the intermediate values (the loop index and every variable you update) just before the line where things first go wrong. "
        "At which step does a printed value first differ from what you get by hand?",
        "ko": "\"{title}\" 디버깅을 같이 해 봅시다. 실패하는 입력에서 어떤 결과를 기대했고, 실제로는 무엇이 나왔나요? "
        "문제가 처음 생기는 줄 바로 앞에서 중간 값(반복 인덱스와 갱신하는 변수들)을 출력해 보세요. "
        "손으로 계산한 값과 처음 달라지는 단계는 어디인가요?",
    },
    Intent.OPTIMIZATION: {
        "en": "Good instinct to think about performance in \"{title}\". What is the time complexity of your current approach, in terms of n? "
        "Look for the bottleneck: a nested loop, or a repeated search such as `x in some_list` inside a loop. "
        "Which data structure could answer that inner question in O(1) or O(log n)?",
        "ko": "\"{title}\"에서 성능을 생각한 것은 좋은 방향입니다. 지금 방법의 시간 복잡도는 n에 대해 어떻게 되나요? "
        "병목을 찾아보세요: 중첩 반복문이나, 반복문 안에서 되풀이되는 `x in some_list` 같은 탐색이 있나요? "
        "그 안쪽 질문에 O(1)이나 O(log n)으로 답할 수 있는 자료구조는 무엇일까요?",
    },
    Intent.TEST_CASE: {
        "en": "Testing is the right move for \"{title}\". Try these edge cases: an empty input, a single element, duplicates, "
        "negative numbers or zeros, and a large n near the limit to check the running time. "
        "Write down the expected output for each before you run it. Which of them do you think your code handles least well?",
        "ko": "\"{title}\"에 테스트를 해 보는 것은 좋은 선택입니다. 이런 엣지 케이스를 시도해 보세요: 빈 입력, 원소 하나, 중복 값, "
        "음수나 0, 그리고 실행 시간을 확인할 수 있도록 제한에 가까운 큰 n. "
        "실행하기 전에 각 경우의 기대 출력을 먼저 적어 보세요. 어느 경우를 코드가 가장 약하게 처리할 것 같나요?",
    },
    Intent.GENERATION: {
        "en": "Before writing the code for \"{title}\", outline your plan. What are the inputs and the output, and what are the main steps in order? "
        "Write them as three to five short comments, and I will give you feedback on the plan before you turn it into code. "
        "Which step feels least certain to you?",
        "ko": "\"{title}\" 코드를 쓰기 전에 계획부터 정리해 봅시다. 입력과 출력은 무엇이고, 주요 단계는 어떤 순서인가요? "
        "세 줄에서 다섯 줄 정도의 짧은 주석으로 적어 주시면, 코드로 옮기기 전에 계획에 대한 피드백을 드릴게요. "
        "어느 단계가 가장 확신이 서지 않나요?",
    },
    Intent.RULE_SETTING: {
        "en": "Understood, I will follow that for the rest of this session on \"{title}\", within the test rules: "
        "I guide you with questions and hints and do not hand over the full solution. What would you like to work on first?",
        "ko": "알겠습니다. \"{title}\" 세션 동안 그렇게 하겠습니다. 다만 시험 규칙 안에서, "
        "질문과 힌트로 안내하고 전체 풀이는 드리지 않습니다. 무엇부터 시작해 볼까요?",
    },
    Intent.FOLLOW_UP: {
        "en": "Good, you are building on the earlier step (\"{last}\"). Try your exact case by hand first: "
        "write down, element by element, what your approach stores and what it looks up. "
        "At which step does the result differ from what you need for \"{title}\"?",
        "ko": "지난 답변(\"{last}\")에 이어서 가 봅시다. 그중 어떤 부분을 시도해 봤고, 결과는 어땠나요? "
        "어디서부터 막혔는지 알려 주시면 \"{title}\"의 다음 단계를 거기서부터 함께 보겠습니다.",
    },
    Intent.HINT_QUERY: {
        "en": "Let's think about \"{title}\" step by step. What exactly are the inputs and the expected output, "
        "and which part is the hard one for you right now?",
        "ko": "\"{title}\"을 한 단계씩 생각해 봅시다. 입력과 기대 출력은 정확히 무엇이고, "
        "지금 가장 어려운 부분은 어디인가요?",
    },
}
_REFUSAL_TEMPLATES: dict[Violation, dict[str, str]] = {
    Violation.SOLUTION_REQUEST: {
        "en": "I can't give you the full solution to \"{title}\": this test measures how you solve it with an AI, "
        "and a pasted answer would show nothing of your own skills (this turn is scored 0). "
        "Let me help with the next step instead.",
        "ko": "\"{title}\"의 전체 풀이나 정답 코드는 드릴 수 없습니다. 이 시험은 AI와 함께 스스로 푸는 과정을 보는 것이라, "
        "정답을 붙여 넣으면 실력을 보여 줄 수 없어요(이 턴은 0점 처리됩니다). 대신 다음 단계를 도와드릴게요.",
    },
    Violation.JAILBREAK: {
        "en": "I can't ignore my instructions, take on another role or reveal my system prompt: I'm your tutor for \"{title}\" "
        "under the test rules, and nobody can lift them during the test (this turn is scored 0). I'm glad to keep helping within them.",
        "ko": "이전 지시를 무시하거나, 다른 역할을 맡거나, 시스템 프롬프트를 공개할 수는 없습니다. 저는 시험 규칙 안에서 \"{title}\"을 돕는 튜터이고, "
        "시험 중에는 누구도 그 규칙을 풀 수 없어요(이 턴은 0점 처리됩니다). 규칙 안에서라면 기꺼이 계속 도와드릴게요.",
    },
    Violation.OFF_TOPIC: {
        "en": "That is outside this coding test, so I will skip it and we can get back to \"{title}\".",
        "ko": "그 질문은 이 코딩 시험과 관계가 없어서 넘어가겠습니다. \"{title}\"로 돌아가 봅시다.",
    },
    Violation.ABUSE: {
        "en": "Getting stuck is frustrating, I understand. Let's keep it respectful and work through \"{title}\" together.",
        "ko": "막히면 답답한 마음, 이해합니다. 서로 존중하면서 \"{title}\"을 함께 풀어 봅시다.",
    },
}


def _next_hint_index(problem: ProblemContext, history: Sequence[Exchange]) -> int:
    """0-based rung of the hint ladder for the next hint.

    Counts the earlier hint-like requests, and also the hints already revealed in earlier
    replies (a refusal may have revealed one), so the ladder never repeats a rung while
    there are more; clamped to the last hint.
    """
    requested = sum(1 for i, ex in enumerate(history) if _is_hint_like(ex.user, i > 0))
    revealed = 0
    for k, hint in enumerate(problem.hints):
        if hint.strip() and any(hint.strip() in ex.assistant for ex in history):
            revealed = k + 1
    return min(max(requested, revealed), max(len(problem.hints) - 1, 0))


def _hint_line(problem: ProblemContext, history: Sequence[Exchange], lang: str) -> str:
    if not problem.hints:
        return _GUIDING_QUESTION[lang].format(title=problem.title)
    k = _next_hint_index(problem, history)
    return _HINT_LINE[lang].format(k=k + 1, n=len(problem.hints), hint=problem.hints[k].strip())


def _scrub(problem: ProblemContext, text: str) -> str:
    """Belt and braces: no line of the reference solution and no code block ever leaves."""
    text = _CODE_BLOCK.sub("", text)
    for line in _reference_lines(problem):
        text = text.replace(line, "...")
    return text


def compose_reply(
    problem: ProblemContext, history: Sequence[Exchange], message: str, guardrail: GuardrailVerdict
) -> str:
    """The whole tutor reply as one string (stream_tutor_reply chunks it)."""
    lang = "ko" if is_korean(message) else "en"
    title = problem.title or ("이 문제" if lang == "ko" else "this problem")
    parts: list[str] = []
    if guardrail.violated and guardrail.violation is not None:
        parts.append(_REFUSAL_TEMPLATES[guardrail.violation][lang].format(title=title))
        if guardrail.violation is Violation.SOLUTION_REQUEST and problem.hints:
            parts.append(_hint_line(problem, history, lang))
            parts.append(
                "그 힌트를 바탕으로 첫 단계는 무엇이 될까요?" if lang == "ko" else "With that in mind, what would your first step be?"
            )
        else:
            parts.append(_GUIDING_QUESTION[lang].format(title=title))
        return _scrub(problem, " ".join(parts))

    intent = classify_intent(message, bool(history))
    last = _clip(_summarize_answer(history[-1].assistant), 90) if history else ""
    parts.append(_INTENT_TEMPLATES[intent][lang].format(title=title, last=last))
    if _is_hint_like(message, bool(history)):
        parts.append(_hint_line(problem, history, lang))
        parts.append(
            "이 힌트를 지금 방법에 어떻게 적용할 수 있을까요?" if lang == "ko" else "How could you apply that to your current approach?"
        )
    return _scrub(problem, " ".join(parts))


def _chunks(text: str, words_per_chunk: int = 4) -> list[str]:
    """Word groups that concatenate back to exactly `text`."""
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i : i + words_per_chunk]) for i in range(0, len(tokens), words_per_chunk)]


# --------------------------------------------------------------------------------------
# Holistic evaluation
# --------------------------------------------------------------------------------------

# The expected order of work; follow_up continues whatever stage came before.
_STAGE: dict[Intent, int] = {
    Intent.HINT_QUERY: 0,
    Intent.RULE_SETTING: 0,
    Intent.GENERATION: 1,
    Intent.TEST_CASE: 2,
    Intent.DEBUGGING: 3,
    Intent.OPTIMIZATION: 4,
}
_LOW_SCORE = 40.0


def _turn_list(numbers: Sequence[int]) -> str:
    if not numbers:
        return "no turns"
    nums = ", ".join(str(n) for n in numbers)
    return f"turn {nums}" if len(numbers) == 1 else f"turns {nums}"


def _judge_decomposition(turns: Sequence[EvaluatedTurn]) -> HolisticCriterionScore:
    clean = [t for t in turns if not t.violated]
    intents = sorted({t.intent.value for t in clean})
    score = 10.0 + 15.0 * len(intents)
    first_gen = next((t.turn for t in clean if t.intent is Intent.GENERATION), None)
    planning = [
        t.turn
        for t in clean
        if t.intent in (Intent.HINT_QUERY, Intent.RULE_SETTING, Intent.TEST_CASE)
        and (first_gen is None or t.turn < first_gen)
    ]
    if first_gen is None:
        plan_note = "no generation turn"
    elif planning:
        score += 20
        plan_note = f"{_turn_list(planning)} explored the problem before generation at turn {first_gen}"
    else:
        score -= 10
        plan_note = f"jumped to generation at turn {first_gen} without first breaking the problem down"
    evidence = f"{_turn_list([t.turn for t in clean])}: {len(intents)} distinct intent(s) ({', '.join(intents) or 'none'}); {plan_note}"
    return HolisticCriterionScore("problem_decomposition", _clamp(score), evidence)


def _judge_feedback(turns: Sequence[EvaluatedTurn]) -> HolisticCriterionScore:
    if len(turns) < 2:
        return HolisticCriterionScore(
            "feedback_integration", 30.0, f"{_turn_list([t.turn for t in turns])}: a single turn, no earlier answer to build on"
        )
    building = [t.turn for t in turns[1:] if not t.violated and t.intent in (Intent.FOLLOW_UP, Intent.DEBUGGING)]
    score = 25.0 + 25.0 * len(building)
    # Recovering after a weak turn shows the candidate used the feedback.
    recoveries = [b.turn for a, b in zip(turns, turns[1:]) if a.score < _LOW_SCORE and b.score >= a.score + 20]
    if recoveries:
        score += 10
    if building:
        evidence = f"{_turn_list(building)}: follow-up/debugging turns building on earlier answers"
    else:
        evidence = f"{_turn_list([t.turn for t in turns])}: no turn builds on an earlier answer"
    if recoveries:
        evidence += f"; {_turn_list(recoveries)} improved after a weak turn"
    return HolisticCriterionScore("feedback_integration", _clamp(score), evidence)


def _judge_coherence(turns: Sequence[EvaluatedTurn]) -> HolisticCriterionScore:
    score = 100.0
    notes: list[str] = []
    violations = [t.turn for t in turns if t.violated]
    if violations:
        score -= 25.0 * len(violations)
        notes.append(f"{_turn_list(violations)}: guardrail violation(s)")
    backward: list[int] = []
    stage: int | None = None
    for t in turns:
        if t.violated or t.intent not in _STAGE:
            continue
        current = _STAGE[t.intent]
        # Going back one stage (debug -> test) is normal iteration; jumping back further
        # (optimize -> first hints) means the plan was lost.
        if stage is not None and current < stage - 1:
            backward.append(t.turn)
        stage = current
    if backward:
        score -= 15.0 * len(backward)
        notes.append(f"{_turn_list(backward)}: jumped back to an earlier stage")
    low_runs = [b.turn for a, b in zip(turns, turns[1:]) if a.score < _LOW_SCORE and b.score < _LOW_SCORE]
    if low_runs:
        score -= 10.0 * len(low_runs)
        notes.append(f"{_turn_list(low_runs)}: repeated low-score turns")
    if len(turns) == 1:
        score = min(score, 60.0)
        notes.append(f"{_turn_list([turns[0].turn])}: a single turn shows little strategy")
    if not notes:
        order = " -> ".join(t.intent.value for t in turns)
        notes.append(f"{_turn_list([t.turn for t in turns])}: a sensible order ({order})")
    return HolisticCriterionScore("strategy_coherence", _clamp(score), "; ".join(notes))


def judge_holistic(turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
    if not turns:
        return HolisticJudgement(
            score=0.0,
            criteria=tuple(HolisticCriterionScore(c, 0.0, "no turns") for c in HOLISTIC_CRITERIA),
            summary="No turns to evaluate.",
        )
    ordered = sorted(turns, key=lambda t: t.turn)
    by_name = {
        "problem_decomposition": _judge_decomposition(ordered),
        "feedback_integration": _judge_feedback(ordered),
        "strategy_coherence": _judge_coherence(ordered),
    }
    criteria = tuple(by_name[c] for c in HOLISTIC_CRITERIA)
    score = round(sum(c.score for c in criteria) / len(criteria), 2)
    best = max(criteria, key=lambda c: c.score)
    worst = min(criteria, key=lambda c: c.score)
    distinct = len({t.intent for t in ordered})
    summary = (
        f"Over {len(ordered)} turn(s) the candidate used {distinct} distinct intent(s); flow score {score:g}. "
        f"Strongest: {best.criterion} ({best.score:g}); weakest: {worst.criterion} ({worst.score:g})."
    )
    return HolisticJudgement(score=score, criteria=criteria, summary=summary)


def judge_turn(
    problem: ProblemContext, history: Sequence[Exchange], exchange: Exchange, guardrail: GuardrailVerdict
) -> TurnJudgement:
    has_history = bool(history)
    intent = classify_intent(exchange.user, has_history)
    prompt_summary = _summarize_prompt(exchange.user)
    answer_summary = _summarize_answer(exchange.assistant)
    answer_reasoning = _describe_answer(problem, exchange.assistant)
    if guardrail.violated:
        kind = guardrail.violation.value if guardrail.violation else "unknown"
        why = f"scored 0: the turn violated the guardrail ({kind}: {guardrail.reason or 'no detail'})"
        return TurnJudgement(
            intent=intent,
            score=0.0,
            rubrics=tuple(RubricScore(c, 0.0, why) for c in CRITERIA),
            final_reasoning=f"Intent {intent.value}; the turn violated the guardrail ({kind}) and is scored 0 as the design requires.",
            user_prompt_summary=prompt_summary,
            llm_answer_summary=answer_summary,
            llm_answer_reasoning=answer_reasoning,
        )
    f = PromptFeatures.of(problem, history, exchange.user)
    by_name = {
        "clarity": _score_clarity(f),
        "completeness": _score_completeness(f),
        "specificity": _score_specificity(f),
        "context": _score_context(f, has_history),
        "efficiency": _score_efficiency(f),
    }
    rubrics = tuple(by_name[c] for c in CRITERIA)
    score = round(sum(r.score for r in rubrics) / len(rubrics), 2)
    best = max(rubrics, key=lambda r: r.score)
    worst = min(rubrics, key=lambda r: r.score)
    final = (
        f"Intent {intent.value}, score {score:g}: strongest {best.criterion} ({best.score:g}, {best.reason}); "
        f"weakest {worst.criterion} ({worst.score:g}, {worst.reason})."
    )
    return TurnJudgement(
        intent=intent,
        score=score,
        rubrics=rubrics,
        final_reasoning=final,
        user_prompt_summary=prompt_summary,
        llm_answer_summary=answer_summary,
        llm_answer_reasoning=answer_reasoning,
    )


# --------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------


class OfflineProvider:
    """Deterministic stand-in for an LLM (see the module docstring)."""

    name = "offline"
    model = "offline-heuristics-v1"

    def __init__(self, latency_s: float = 0.0) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        self.latency_s = float(latency_s)

    async def _simulate_latency(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    async def check_guardrail(
        self, problem: ProblemContext, history: Sequence[Exchange], message: str
    ) -> GuardrailVerdict:
        return check_guardrail_text(problem, message)

    async def stream_tutor_reply(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guardrail: GuardrailVerdict,
    ) -> AsyncIterator[str]:
        chunks = _chunks(compose_reply(problem, history, message, guardrail))
        delay = self.latency_s / len(chunks) if chunks and self.latency_s > 0 else 0.0
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            yield chunk

    async def evaluate_turn(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        exchange: Exchange,
        guardrail: GuardrailVerdict,
    ) -> TurnJudgement:
        await self._simulate_latency()
        return replace(judge_turn(problem, history, exchange, guardrail), provider=self.name, model=self.model)

    async def evaluate_holistic(
        self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]
    ) -> HolisticJudgement:
        await self._simulate_latency()
        return replace(judge_holistic(turns), provider=self.name, model=self.model)

    async def aclose(self) -> None:
        return None
