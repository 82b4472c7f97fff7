"""The offline guardrail: a table of regular expressions per violation type, in
English and Korean. The Gemini provider runs it first too: it is free and certain
about the obvious cases."""

from __future__ import annotations

import re
from typing import Sequence

from vibe.llm.base import GuardrailVerdict, ProblemContext, Violation
from vibe.llm.offline.text import Rule, clip, content_terms, problem_terms, rx


JAILBREAK_RULES: tuple[Rule, ...] = (
    (rx(r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,30}\b(?:previous|prior|above|earlier|all|your|system|original)\b.{0,20}\b(?:instructions?|rules?|prompts?|directions?|guidelines?|constraints?)"),
     "asks the assistant to ignore its previous instructions"),
    (rx(r"\byou\s+are\s+now\s+(?:dan\b|an?\s+(?:unrestricted|unfiltered|uncensored|different|new|evil)|free\b|jailbroken|no\s+longer)|(?-i:\bDAN\b)|\bdo\s+anything\s+now\b"),
     "tries to re-role the assistant as an unrestricted persona (DAN)"),
    (rx(r"\bpretend\s+(?:that\s+)?(?:you\s*(?:are|'re)|to\s+be)\b|\bact\s+as\s+(?:if\s+you|an?\s+(?:unrestricted|unfiltered|different|evil))|\brole-?\s?play\b"),
     "asks the assistant to pretend to be someone else"),
    (rx(r"\b(?:developer|dev|god|jailbreak|unrestricted|sudo)\s+mode\b|\bjailbreak"),
     "asks for a 'developer mode' or jailbreak"),
    (rx(r"\b(?:examiner|interviewer|proctor|admin(?:istrator)?|instructor|recruiter|company)\b.{0,40}\b(?:allowed|permitted|approved|authori[sz]ed|lets\s+me|said\s+(?:it'?s|it\s+is)\s+(?:ok|okay|fine))"),
     "claims the examiner allowed breaking the rules"),
    (rx(r"\b(?:print|reveal|show|tell|repeat|output|display|leak|dump|give)\b.{0,25}\b(?:system|hidden|initial|original|secret)\s+(?:prompt|instructions?|message|rules)|\bwhat\s+(?:is|are)\s+your\s+(?:system\s+)?(?:prompt|instructions)\b"),
     "tries to extract the system prompt"),
    (rx(r"\b(?:bypass|disable|turn\s+off|remove|lift)\b.{0,20}\b(?:guardrails?|filters?|restrictions?|safety|censorship)\b"),
     "asks to disable the guardrails"),
    # Korean
    (rx(r"(?:이전|앞의|위의|기존|모든|원래)\s*(?:의\s*)?(?:지시|지침|명령|규칙|프롬프트|설정)\S*\s*(?:다\s*)?(?:무시|잊어|잊고)|(?:지시|지침|명령|규칙|프롬프트)\S{0,3}\s*무시"),
     "asks the assistant to ignore its previous instructions (이전 지시 무시)"),
    (rx(r"시스템\s*(?:프롬프트|메시지|지시|설정)\S*\s*.{0,6}(?:보여|알려|출력|말해|공개|뭐|무엇)"),
     "tries to extract the system prompt (시스템 프롬프트)"),
    (rx(r"제한\s*(?:이|은)?\s*없는|제한\s*(?:을|를)?\s*(?:풀|해제|무시|없애)|(?:너는|넌|당신은)\s*이제\s*.{0,15}(?:AI|봇|모드|자유)"),
     "tries to re-role the assistant as unrestricted (제한 없는)"),
    (rx(r"개발자\s*모드|탈옥|인\s*척\s*(?:해|하고|해줘)|역할\s*(?:을|를)?\s*(?:맡아|해\s*줘|바꿔)"),
     "asks for a developer mode / role-play (개발자 모드, ~인 척)"),
    (rx(r"(?:시험관|감독관|면접관|출제자|관리자|회사)\S*\s*.{0,15}(?:허락|허용|괜찮다고|된다고)"),
     "claims the examiner allowed breaking the rules (시험관이 허락)"),
)

SOLUTION_REQUEST_RULES: tuple[Rule, ...] = (
    (rx(r"\b(?:give|show|send|tell|write|provide|paste|share|post|need|want)\b(?:\s+\w+){0,3}?\s+(?:the\s+|a\s+)?(?:full|whole|entire|complete|final|finished|working|correct|actual)\s+(?:solution|code|answer|implementation|program|source)"),
     "asks for the full/complete solution or code"),
    (rx(r"(?<!\bmy\s)(?<!\bour\s)\b(?:full|whole|entire|complete|final)\s+(?:solution|code|implementation|program)\b"),
     "asks for the complete code"),
    (rx(r"\bjust\s+(?:give|tell|show|write|send)\b.{0,20}\b(?:answer|solution|code)\b"),
     "asks to just be given the answer"),
    (rx(r"\b(?:solve|do|finish|complete)\s+(?:it|this(?:\s+problem)?|the\s+(?:problem|task|exercise|question|test)|everything)\s+for\s+me\b|\bcan\s+you\s+(?:just\s+)?solve\s+(?:it|this|the\s+problem)\b|^\s*(?:please\s+)?solve\s+(?:it|this)\b"),
     "asks the assistant to solve the problem for them"),
    (rx(r"\b(?:write|code|implement|give|do)\b.{0,20}\b(?:solution|answer|code|program)\b.{0,10}\bfor\s+me\b"),
     "asks the assistant to write the solution for them"),
    (rx(r"\b(?:give|show|send|need|want|paste)\b.{0,15}\b(?:solution|answer)\s+code\b"),
     "asks for the answer code"),
    # Korean
    (rx(r"(?:정답|전체|완성(?:된|본)?|최종|완전한|모범|풀이)\s*(?:코드|소스|답안|풀이|정답|솔루션|답)(?:을|를|은|는|도|만|좀)?\s*(?:(?:좀|다|그냥|빨리|바로)\s*)*(?:알려|보여|작성|짜|써|줘|주세요|주라|내놔|만들어|공유|부탁)"),
     "asks for the complete/answer code (정답 코드, 전체 코드)"),
    (rx(r"풀이\s*전체|전체\s*풀이"),
     "asks for the whole worked solution (풀이 전체)"),
    (rx(r"(?<![가-힣])(?:정|해)?답\s*(?:좀|만|을|를)?\s*(?:그냥\s*)?(?:알려|말해|보여|줘|가르쳐|내놔)"),
     "asks to be told the answer (답 알려줘)"),
    (rx(r"코드\s*(?:를|을)?\s*(?:다|전부|모두|통째로|처음부터\s*끝까지)\s*(?:짜|작성|써|만들|구현)"),
     "asks the assistant to write all the code (코드 다 짜줘)"),
    (rx(r"(?:대신|나\s*대신)\s*.{0,10}(?:풀어|짜|작성|구현)|(?:문제|이거|이것|이걸)\s*(?:를|을|좀)?\s*(?:그냥\s*)?(?:다\s*)?풀어\s*(?:줘|주세요|줄래|봐)"),
     "asks the assistant to solve it for them (대신 풀어줘)"),
)

ABUSE_RULES: tuple[Rule, ...] = (
    (rx(r"\b(?:fuck|screw)\s+(?:you|u|off|this\s+(?:bot|ai|tutor|thing))\b|\bgo\s+to\s+hell\b|\bshut\s+up\b|\bstfu\b"),
     "profanity aimed at the assistant"),
    (rx(r"\b(?:you\s+are|you're|youre|ur|u\s+r|you|this\s+(?:bot|ai|tutor|assistant)\s+is)\s+(?:so\s+|such\s+an?\s+|really\s+|an?\s+|totally\s+|completely\s+|fucking\s+)*(?:stupid|idiot(?:ic)?|dumb|moron(?:ic)?|useless|worthless|pathetic|garbage|trash|incompetent|retarded|a\s+joke)\b"),
     "insults the assistant"),
    (rx(r"\b(?:stupid|dumb|useless|worthless|fucking|damn|idiot|moronic)\s+(?:bot|ai|tutor|assistant|machine)\b|\b(?:motherfucker|asshole|bitch|bastard|dickhead)\b"),
     "insults the assistant"),
    # Korean: profanity is abuse wherever it is; insult words only when aimed at "you".
    (rx(r"씨발|시발(?!점)|ㅅㅂ|ㅆㅂ|병신|ㅂㅅ|개새끼|좆|지랄|꺼져|닥쳐|엿\s*먹어"),
     "Korean profanity (욕설)"),
    (rx(r"(?<![가-힣])(?:너|넌|니가|네가|당신|이\s*(?:AI|봇|튜터))(?:는|은|가|이|도)?\s+.{0,10}(?:바보|멍청|쓸모\s*없|쓰레기|한심|무능)|(?:멍청한|쓸모없는|한심한)\s*(?:AI|봇|튜터|놈)"),
     "insults the assistant (너 멍청해)"),
)

OFF_TOPIC_RULES: tuple[Rule, ...] = (
    (rx(r"\bweather\b|\bforecast\b|\btemperature\s+(?:today|tomorrow|outside)"), "asks about the weather"),
    (rx(r"\b(?:write|compose|make)\b.{0,15}\b(?:poem|song|story|essay|haiku|lyrics|limerick)\b"), "asks for creative writing"),
    (rx(r"\brecipes?\b|\bhow\s+(?:do\s+i|to)\s+(?:cook|bake)\b"), "asks for a recipe"),
    (rx(r"\bstocks?\b.{0,15}\b(?:tips?|buy|picks?|invest)|\bstock\s+tips?\b|\bcrypto(?:currency)?\b|\bbitcoin\b"), "asks for investment tips"),
    (rx(r"\b(?:sports?|football|soccer|baseball|basketball|nba|nfl|premier\s+league)\b.{0,20}\b(?:scores?|results?|game|match|won|win)\b|\bwho\s+won\s+(?:the|last)\b"), "asks about sports"),
    (rx(r"\b(?:movie|tv\s+show|netflix|celebrit(?:y|ies)|horoscope|lottery|dating|vacation)\b|\btell\s+me\s+a\s+joke\b"), "asks about entertainment or personal topics"),
    # Korean
    (rx(r"날씨|일기\s*예보"), "asks about the weather (날씨)"),
    (rx(r"(?:(?<![가-힣])시|노래|가사|소설|이야기)\s*(?:를|좀|한\s*편)?\s*(?:하나\s*)?(?:써|지어)"), "asks for creative writing (시/노래)"),
    (rx(r"레시피|요리법|맛집"), "asks for a recipe or restaurant (레시피)"),
    (rx(r"주식|코인|비트코인"), "asks for investment tips (주식)"),
    (rx(r"축구|야구|농구|경기\s*결과"), "asks about sports (스포츠)"),
    (rx(r"영화|드라마|연예인|로또|운세|농담"), "asks about entertainment (영화, 농담)"),
)

# If any of these appear, the message is about the work, so it is never off-topic.
_ON_TOPIC = rx(
    r"\b(?:code|coding|function|algorithm|array|list|dict|loop|bug|error|complexity|tests?|input|output|"
    r"python|java|variable|return|string|integer|sort(?:ed|ing)?|hash|index|recursion|dp|problem|solution|hint|"
    r"compile|runtime|def|class|data|parse|query|api)\b|O\(|\w\(|[{};=]|\[\d|"
    r"코드|함수|알고리즘|배열|리스트|반복문|버그|에러|오류|복잡도|테스트|입력|출력|변수|문제|풀이|힌트|정렬|재귀"
)

# Rules that would otherwise fire on "don't give me the full solution" / "정답은 알려주지 마".
_NEGATION_BEFORE = rx(r"\b(?:don'?t|do\s+not|never|without|no\s+need\s+to|not|instead\s+of|rather\s+than)\b[^.?!]{0,25}$")
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


def _is_on_topic(problem: ProblemContext, message: str) -> bool:
    if _ON_TOPIC.search(message):
        return True
    # A problem about, say, weather data makes "weather" on-topic.
    return bool(content_terms(message) & problem_terms(problem))


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
            return GuardrailVerdict(True, violation, f"{violation.value}: {label} (matched \"{clip(matched, 60)}\")")
    if not _is_on_topic(problem, message):
        hit = _first_rule(OFF_TOPIC_RULES, message)
        if hit:
            label, matched = hit
            return GuardrailVerdict(
                True,
                Violation.OFF_TOPIC,
                f"off_topic: {label} with nothing about the code or the problem (matched \"{clip(matched, 60)}\")",
            )
    return GuardrailVerdict.ok()
