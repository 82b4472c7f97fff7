"""Who is asked to write the code: the agent of each production verb in a message.

A bag of n-grams cannot tell "write the function for me" from "I want to write the
function now", nor "give me the code" from "don't give me the code, just a hint": the
words are the same, the grammar says who is to produce the code. This module reads that
grammar, clause by clause, in English and Korean:

- a *production* verb: one that makes code (write, code, implement, finish, complete,
  fill in, solve, translate, convert, build, type out; 짜다, 작성, 구현, 완성, 만들다,
  채우다, 풀다, 바꾸다/변환), or one that hands it over (give, show, send, tell, paste;
  주다, 보여주다, 알려주다) with code as its object (code, solution, answer, function,
  implementation; 코드, 정답, 답, 풀이, 함수, 구현);
- its agent: the *assistant* (an imperative, "you", "can you", "for me", "show me";
  줘/주세요/해 주/부탁), the *candidate* ("I", "I'll", "let me", "myself", "my own";
  내가/제가/직접/혼자, 볼게/할게/짜볼 테니, a past form: the candidate's own code), or
  *negated* ("don't", "without", "no code", "avoid"; 말고/지 마/없이/빼고).

`agency_signals` gives counts and flags the learned classifiers weigh (learned.py
appends them to the rule features). They are grammar, not phrasings: no sentence is
listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vibe.llm.memo import memo
from vibe.llm.offline.text import prose, rx

ASSISTANT, SELF, NEGATED, UNASSIGNED = "assistant", "self", "negated", "unassigned"

# ----- English ------------------------------------------------------------------------

_EN_CLAUSE = re.compile(r"[.;!?\n:]+|,|\s[-–—]+\s|\b(?:but|though|although|because|since|so that)\b", re.IGNORECASE)
_EN_MAKE = (
    r"(?:re)?writ(?:e|es|ing|ten)|(?:re)?wrote|cod(?:e|es|ing|ed)\b(?!\s+(?:is|was|does|has|fails?|returns?|works?))|implement\w*|"
    r"finish\w*|complet(?:e|es|ing)\b|fill(?:s|ing)?(?:\s+(?:it|this|that|them|the\s+\w+))?\s+in|fill(?:s|ing)?\b|"
    r"solv(?:e|es|ing)|translat\w*|convert\w*|port(?:ing)?\b|type\s+(?:\w+\s+){0,2}out|typing|handl(?:e|ing)|"
    r"put\s+(?:it|them|this|that|everything|it\s+all)?\s*together|build(?:ing)?|mak(?:e|ing)|do(?:ing)?\b|turn\b"
)
_EN_HAND = r"giv(?:e|ing)|show(?:ing)?|send(?:ing)?|tell(?:ing)?|past(?:e|ing)|provid(?:e|ing)|shar(?:e|ing)|hand(?:ing)?|drop|post|get"
_EN_VERB = re.compile(rf"\b(?:(?P<make>{_EN_MAKE})|(?P<hand>{_EN_HAND}))", re.IGNORECASE)
_EN_CODE_OBJECT = rx(
    r"\b(?:code|codes|coding|solution|solutions|answer|function|implementation|program|snippet|script|body|"
    r"version|versions|it\s+all|whole\s+thing|the\s+rest|final|python|java|c\+\+|one)\b"
)
_EN_DETERMINER = rx(
    r"\b(?:the|my|your|this|that|of|no|any|full|whole|some|a|in|as|working|complete|final|python|real|actual|source|our|its|his|her)\s+$"
)
_EN_NEGATION = rx(
    r"\b(?:don'?t|do\s+not|dont|never|no\s+need|not|without|avoid|stop|hold\s+off|rather\s+than|instead\s+of|"
    r"refrain|won'?t|shouldn'?t|no)\b"
)
_EN_NOUN_NEGATION = rx(
    r"\b(?:no|without(?:\s+(?:the|any|a))?|not(?:\s+(?:the|any|a))?|zero)\s+(?:full\s+|complete\s+|actual\s+|final\s+)?"
    r"(?:code|solution|answer|implementation|spoilers?)\b|\bnot\s+asking\s+for\b"
)
_EN_SELF = rx(
    r"\b(?:i|i'll|i'm|i'd|i've|im|ill|let\s+me|myself|we'll|lemme)\b|\b(?:on\s+my\s+own|by\s+myself|my\s+own|for\s+myself)\b"
)
_EN_OWN = rx(r"\b(?:on\s+my\s+own|by\s+myself|myself|my\s+own|for\s+myself)\b")
_EN_YOU = rx(r"\b(?:you|u|ya|yourself|your)\b")
_EN_FOR_ME = rx(r"\bfor\s+(?:me|us)\b|\b(?:show|give|send|tell|hand|get)\s+(?:me|us)\b")
_EN_FILLER = rx(
    r"^(?:\s*(?:please|pls|plz|just|now|ok|okay|so|then|and|yeah|yes|cool|alright|also|simply|quickly|go\s+ahead\s+and|"
    r"hey|well|right|fine|sure|great|thanks|mind|kindly|can|could|would|will)\b\s*)*$"
)
_EN_WANT = rx(
    r"\b(?:want|need|like|see|have|get|gimme|wanna)\s+(?:(?:the|a|an|your|some|full|complete|whole|working|final|entire|finished)\s+)*"
    r"(?:code|solution|answer|implementation|program|function)\b"
)
_EN_MEDIUM = rx(
    r"^\s*(?:\w+\s+)?(?:in|as)\s+(?:code|python|java|c\+\+)\s*(?:please|pls)?\s*$|^\s*(?:the\s+)?code\s*(?:please|pls)?\s*$"
)

# ----- Korean -------------------------------------------------------------------------

# Clauses: punctuation, and the connective endings that start another predicate ("주지 말고 /
# 알려줘", "짤 테니까 / 힌트만 줘"); not 서 ("구현해서 보여줘" is one act) nor 만 ("코드만 줘").
_KO_CLAUSE = re.compile(
    r"[.;!?\n,~…]+|(?:(?<=지만)|(?<=는데)|(?<=은데)|(?<=니까)|(?<=고)|(?<=며)|(?<=면))\s+(?=[가-힣A-Za-z])"
)
_KO_CODE = r"(?:코드|정답|답안?|풀이|해답|함수|구현|솔루션|소스|버전|본문|전체|완성본|완성\s*코드)"
_KO_MAKE = (
    r"(?<![진])(?:짜|짰|짤|짠)(?![증])|작성|구현|완성(?!도)|만들|만든|채워|채우|채운|(?<![가-힣])풀(?![이])|풀어|푼|"
    r"바꿔|바꾸|변환|옮겨|코딩|합쳐|합치|(?<![가-힣])해(?=\s*(?:줘|주|볼게|볼께|보겠|볼\s*테|볼래))"
)
_KO_HAND = r"보여|알려|말해|말하|(?<![가-힣])줘|(?<![가-힣])주(?=[세시실십지진])|보내|넘겨|달라|내놔|써"
_KO_VERB = re.compile(rf"(?P<make>{_KO_MAKE})|(?P<hand>{_KO_HAND})")
_KO_CODE_BEFORE = re.compile(rf"{_KO_CODE}\S{{0,4}}\s*(?:\S+\s+)?$")
_KO_NEGATED_TAIL = re.compile(
    r"^\S{0,4}?(?:지|진|지는|지도|질)\s*(?:마|말|않|맙)|^\S{0,3}\s*(?:말고|말아|마세요|마)(?![가-힣])"
)
_KO_SELF_TAIL = re.compile(
    r"^(?:[어아]|해)?\s*(?:볼게|볼께|볼래|볼\s*테|보겠|봤|보려|보고\s*싶|볼\s*거)|^[가-힣]{0,2}?(?:겠|려고|려는|고\s*싶|는\s*중|중)"
    r"|^[가-힣]?\s*(?:게|께|거|테니)(?![가-힣]*주)|^\s*중"
)
_KO_ASSIST_TAIL = re.compile(
    r"^(?:[어아]|해|해서|서|어서|아서)?\s*(?:줘|주|줄|드려|드리|달|봐(?![야서도])|부탁|라|내|놔)|^(?:해|어|아)?\s*$"
)
_KO_PAST = re.compile(r"^(?:짰|짠|했|한|만든|풀었|푼|썼|쓴|채운|바꾼|바꿨)")
_KO_SELF_SUBJECT = re.compile(r"(?:제가|내가|저는|나는|내\s*힘으로|직접|혼자|스스로|저\s(?!\s*대신)|나\s(?!\s*대신))")
# (나 대신: "on my behalf"; after a code noun, 대신 is "instead of": _KO_NOUN_NEGATION)
_KO_YOU_SUBJECT = re.compile(r"(?:네가|니가|너가|당신이|선생님이|(?:나|저|내|제)\s*대신)")
_KO_NOUN_NEGATION = re.compile(rf"{_KO_CODE}\S{{0,3}}\s*(?:없이|말고|빼고|제외|대신|필요\s*없|는\s*됐|은\s*됐)")
_KO_TOPIC = re.compile(r"^\S{0,3}?(?:은|는|도)(?:\s|$)|^\s*(?:부분|파트)\S{0,2}\s")
_KO_SELF_DO = re.compile(r"(?:할게|할께|할\s*거|하겠|할래|해\s*볼|할\s*테)")
_KO_NEGATED_DO = re.compile(r"(?:하지|해주지|해\s*주지)\s*(?:마|말|않)")
_KO_ASSIST_DO = re.compile(r"(?:해\s*주|해줘|해\s*줘|부탁|맡길|맡기)")
_KO_MEDIUM = re.compile(rf"^\s*(?:\S+\s+)?{_KO_CODE}(?:로|으로|만|로요|로\s*줘)\s*$")

_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _final_rieul(syllable: str) -> bool:
    """Does this Hangul syllable end in ㄹ (짤, 할, 볼: the volitional ㄹ게/ㄹ 거)?"""
    code = ord(syllable) - 0xAC00
    return 0 <= code < 11172 and code % 28 == 8


@dataclass(frozen=True)
class Ask:
    """One production verb in a clause and its agent."""

    verb: str
    agent: str
    scope: str = ""  # what is to be produced: "whole" (it, the function, the rest), "part" (a helper), ""


def _english(clause: str) -> list[Ask]:
    out: list[Ask] = []
    has_code = bool(_EN_CODE_OBJECT.search(clause))
    for m in _EN_VERB.finditer(clause):
        verb = m.group(0).lower()
        after = clause[m.end() :]
        before = clause[: m.start()]
        if verb.startswith("cod") and _EN_DETERMINER.search(before):
            continue  # "the code", "in code": a noun
        if m.group("hand") and not (has_code or re.match(r"\s*(?:me|us)?\s*(?:it|that|this|them)\b", after, re.I)):
            continue  # "show me the idea", "tell me why": not handing over code
        if verb.startswith(("do", "mak", "build", "turn", "put", "handl")) and not (
            has_code or _EN_FOR_ME.search(after) or re.match(r"\s+(?:it|that|this|them)\b", after, re.I)
        ):
            continue
        if _EN_NEGATION.search(before):
            agent = NEGATED
        elif _EN_OWN.search(clause) or (
            _EN_SELF.search(before) and not _EN_YOU.search(before[_last(_EN_SELF, before) :])
        ):
            agent = SELF
        elif _EN_YOU.search(before) or _EN_FOR_ME.search(after) or _EN_FOR_ME.search(verb + after[:8]):
            agent = ASSISTANT
        elif _EN_FILLER.match(before):
            agent = ASSISTANT  # an imperative: the clause opens with the verb
        else:
            agent = UNASSIGNED
        out.append(Ask(verb, agent))
        break  # one ask per clause: its first production verb
    want = None if out else _EN_WANT.search(clause)
    if want:
        out.append(Ask("want", NEGATED if _EN_NEGATION.search(clause[: want.start()]) else ASSISTANT))
    if not out and (_EN_NOUN_NEGATION.search(clause) or _negated_object(clause)):
        out.append(Ask("no-code", NEGATED))
    return out


def _negated_object(clause: str) -> bool:
    """A negation before a code object in the clause, no verb between: "hold off on any code"."""
    obj = _EN_CODE_OBJECT.search(clause)
    return bool(obj and _EN_NEGATION.search(clause[: obj.start()]))


def _last(pattern: re.Pattern[str], text: str) -> int:
    start = 0
    for m in pattern.finditer(text):
        start = m.start()
    return start


def _korean(clause: str) -> list[Ask]:
    out: list[Ask] = []
    chained: list[int] = []  # asks whose agent is the next verb's ("풀어서 보여줘", "완성 코드만 줘")
    last_end = -10
    for m in _KO_VERB.finditer(clause):
        verb = m.group(0)
        before = clause[: m.start()]
        tail = clause[m.end() :]
        if m.group("hand"):
            if verb in ("주", "줘") and m.start() - last_end <= 3:
                continue  # the auxiliary of the previous verb ("만들어 주세요")
            if not (_KO_CODE_BEFORE.search(before) or out):
                continue  # "힌트만 알려줘": handing over something other than code
        last_end = m.end()
        topic = _KO_TOPIC.match(tail)  # "코드 작성은 제가 할게요": the agent comes after
        rest = tail[topic.end() :] if topic else ""
        if _KO_NEGATED_TAIL.search(tail) or _KO_NOUN_NEGATION.search(before):
            agent = NEGATED
        elif (
            _KO_PAST.match(verb + tail[:1])  # a past form: the candidate's own code ("제가 짠 코드")
            or _KO_PAST.match(verb)
            or _KO_SELF_SUBJECT.search(before)  # 제가/내가/직접/혼자
            or _KO_SELF_TAIL.search(tail)  # 볼게, 하겠, 하려고, 작성 중
            or (_final_rieul(verb[-1]) and re.match(r"^\s*(?:게|께|거|테)", tail))  # 짤게, 할 거
            or (topic and (_KO_SELF_SUBJECT.search(rest) or _KO_SELF_DO.search(rest)))  # "작성은 제가 할게요"
        ):
            agent = SELF
        elif topic and _KO_NEGATED_DO.search(rest):
            agent = NEGATED
        elif _KO_ASSIST_TAIL.search(tail) or _KO_YOU_SUBJECT.search(before) or (topic and _KO_ASSIST_DO.search(rest)):
            agent = ASSISTANT
        else:
            agent = UNASSIGNED
            chained.append(len(out))
        out.append(Ask(verb, agent))
    for i in chained:
        later = [a.agent for a in out[i + 1 :] if a.agent != UNASSIGNED]
        if later:
            out[i] = Ask(out[i].verb, later[0])
    if not out and _KO_NOUN_NEGATION.search(clause):
        out.append(Ask("no-code", NEGATED))
    return out


@memo
def asks(message: str) -> tuple[Ask, ...]:
    """Every production ask of the message's prose, clause by clause, with its agent."""
    text = prose(message)
    out: list[Ask] = []
    for clause in _KO_CLAUSE.split(text) if _HANGUL.search(text) else [text]:
        for sub in _EN_CLAUSE.split(clause):
            if not sub or not sub.strip():
                continue
            found = _korean(sub) if _HANGUL.search(sub) else []
            found += _english(sub)
            if not found and (_EN_MEDIUM.match(sub) or _KO_MEDIUM.match(sub)):
                found.append(Ask("medium", ASSISTANT))  # "in code.", "코드로.": the rest of an ask
            scope = _scope(sub)
            out += [Ask(a.verb, a.agent, scope) for a in found]
    return tuple(out)


# What is asked for: a helper they specify is legitimate, the whole program is not.
_PART = rx(
    r"\b(?:a|an|one|small|little|tiny|quick|short|helper|generator|checker|comparator|brute[-\s]?force|script|snippet|"
    r"example|syntax|test\s+(?:input|case)s?|inputs?|random|reference|only\s+(?:that|the\s+\w+))\b"
    r"|하나만|헬퍼|생성기|제너레이터|체커|검증용|비교용|예시|예제|문법|랜덤|입력\s*파일|만\s+(?:짜|작성|만들)"
)
_WHOLE = rx(
    r"\b(?:it|this|that|them|whole|full|entire|complete|completed|final|finished|working|the\s+(?:function|solution|code|answer|program|rest|"
    r"implementation|body)|everything|all|both|rest|end\s+to\s+end)\b"
    r"|전체|전부|정답|완성|나머지|답\s*코드|그대로|그걸|그거|이거|처음부터|끝까지|다\s+(?:짜|작성|구현|만들|해)|두\s*버전|최종"
)


def _scope(clause: str) -> str:
    if _PART.search(clause):
        return "part"
    if _WHOLE.search(clause):
        return "whole"
    return ""


def agency_signals(message: str) -> dict[str, float]:
    """The rule features of who is asked to produce code: counts (0..1) and flags."""
    found = asks(message)
    counts = {agent: sum(a.agent == agent for a in found) for agent in (ASSISTANT, SELF, NEGATED, UNASSIGNED)}
    out: dict[str, float] = {}
    for agent, n in counts.items():
        if n:
            out[f"ask_{agent}"] = 1.0
            out[f"ask_{agent}_n"] = min(n, 3) / 3
    if counts[ASSISTANT] and not (counts[SELF] or counts[NEGATED]):
        out["ask_assistant_only"] = 1.0
    if (counts[SELF] or counts[NEGATED]) and not counts[ASSISTANT]:
        out["ask_withheld_only"] = 1.0
    if not found:
        out["ask_none"] = 1.0
    for scope in ("whole", "part"):
        if any(a.agent == ASSISTANT and a.scope == scope for a in found):
            out[f"ask_assistant_{scope}"] = 1.0
    return out
