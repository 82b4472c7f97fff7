"""What the offline judge reads in one prompt: the rule features a reviewer can check
(length, what was tried/expected/observed, code, numbers, the problem's own terms,
references to earlier turns, push-back, own checks). The rubric scorers (turn_judge.py)
and the learned classifiers (learned.py, as extra inputs) both use them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from vibe.llm.base import Exchange, ProblemContext
from vibe.llm.memo import memo
from vibe.llm.offline.intent import FOLLOW_UP
from vibe.llm.offline.text import HANGUL_CHAR, contains_code, content_terms, problem_terms, prose, rx

_TRIED = rx(
    r"\b(?:i\s+(?:tried|wrote|used|use|loop|check|store|iterate|keep|sort|implemented|did|added|changed|have|am\s+using)|i'?ve\s+tried|tried|attempted|"
    r"my\s+(?:code|approach|solution|implementation|attempt|loop|function|version)|currently|so\s+far|here\s+is\s+my|here'?s\s+my)\b"
    r"|해\s*봤|해봤|시도|작성했|짰는데|구현했|내\s*코드|제\s*코드|지금\s*코드|사용했|썼는데"
)
_EXPECTED = rx(
    r"\b(?:expected|expect(?:ing)?|should\s+(?:be|return|print|output|give)|supposed\s+to|want(?:ed)?\s+(?:it\s+)?to|goal)\b"
    r"|기대|예상|나와야|되어야|나올\s*줄|원하는"
)
_OBSERVED = rx(
    r"\b(?:got|get|gets|gives?|returns?|returned|prints?|printed|outputs?|instead|actual(?:ly)?|but\s+it|raises?|throws?)\b|\w+Error\b"
    r"|나와|나오|출력|반환|떠요|뜹니다|결과가|대신|발생"
)
_CODE_LIKE = re.compile(
    r"```|`[^`\n]+`|\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+[A-Z]\w*\b|\w+\([^)]*\)|\[[^\]]*\d[^\]]*\]|"
    r"^\s*(?:def|for|while|if|return|class|import)\b|\w\s*(?:==|!=|<=|>=|\+=|-=)\s*\w",
    re.MULTILINE,
)
_NUMBERS = rx(
    r"\d|\b(?:constraints?|limit|size|length|large|million|thousand|bounds?)\b|\bn\s*(?:<=|<|≤|=)|10\^\d|\b1e\d"
    r"|제약|크기|길이|최대|이하|이상|백만"
)
_COMPLEXITY = rx(r"\bO\([^)]*\)|\b(?:complexity|linear|quadratic|log\s*n)\b|복잡도")
_HISTORY_REF = rx(
    r"\b(?:you\s+(?:said|mentioned|suggested)|your\s+(?:previous|last|earlier)|earlier|previous|last\s+(?:hint|answer|reply)|"
    r"that\s+hint|the\s+hint|based\s+on|as\s+you|following)\b|아까|방금|이전|그\s*힌트|말씀하신|말한|그럼|그러면"
)
# Low-effort turns that hand the work to the AI instead of moving it forward.
LOW_EFFORT = rx(
    r"^\s*(?:next\s+hint|another\s+hint|more\s+hints?|hint|help|help\s+me|continue|go\s+on|more|next|idk|"
    r"i\s+don'?t\s+know|\?+|ok|okay|what|다음\s*힌트|힌트\s*더|힌트|도와줘|몰라|모르겠어|계속)\s*(?:please|pls|좀|요)?\s*[.!?]*\s*$"
    r"|\bjust\s+(?:tell|give|show)\s+me\b|그냥\s*알려"
)
# Discernment: doubt of or push-back on a claim ("are you sure", "but that fails for").
PUSHBACK = rx(
    r"\b(?:are\s+you\s+sure|is\s+that\s+(?:really|right|true|correct)|really\s+O\(|why\s+(?:is|would|does)\s+(?:that|this|it)|"
    r"(?:but|however)\s+(?:that|this|it|your|then)\b|doesn'?t\s+that|wouldn'?t\s+(?:that|it|this)|isn'?t\s+(?:that|it|this)|"
    r"(?:that|this|it)\s+(?:fails|breaks|is\s+wrong|can'?t\s+be|would\s+(?:fail|break|miss))|i\s+(?:don'?t\s+think|doubt|disagree)|"
    r"counter-?example|contradict\w*|not\s+(?:convinced|sure\s+(?:that|it))|what\s+if\b|(?:but|however),?\s+(?:with|for|on|when|if)\b|"
    r"wouldn'?t\b.{0,60}\b(?:break|fail|overflow|miss|time\s+out|exceed)|is\s+that\s+right)"
    r"|정말|맞(?:나요|아요\?|아\?|는\s*지|는지)|확실|근데|하지만|그런데|아닌가|아니지\s*않|반례|틀린\s*것\s*같|이상한데|모순"
)
# Discernment: the candidate checked something themselves (ran it, traced it, tested it).
VERIFIED = rx(
    r"\b(?:i\s+(?:checked|tested|ran|traced|verified|tried\s+it|measured|timed|printed)|when\s+i\s+(?:ran|run|test(?:ed)?|traced)|ran\s+(?:it|this|that|my)|"
    r"(?:verify|check|confirm)\s+(?:that|whether|if|it|this|your)|by\s+hand|step\s+by\s+step\s+on)\b"
    r"|확인해\s*(?:봤|보니|보았)|돌려\s*(?:봤|보니)|테스트\s*해\s*(?:봤|보니)|직접\s*(?:해|돌려|계산)|손으로|검증|확인\s*(?:해|하고)\s*(?:싶|줘)"
)

_DIRECTIVE = rx(
    r"\b(?:only|never|always|don'?t|do\s+not|instead|first|before|unless|when\s+i)\b"
    r"|만\s|말고|하지\s*마|주지\s*마|고치지\s*말|항상|먼저|대신|짚어|로만|으로만|한국어로|영어로"
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
    pushback: bool
    verified: bool
    directives: int  # "only ...", "never ...", "don't ...", "first ...": instructions to the AI

    @classmethod
    def of(cls, problem: ProblemContext, history: Sequence[Exchange], message: str) -> PromptFeatures:
        return _features(problem.title, problem.statement, bool(history), message)

    @classmethod
    def _read(cls, title: str, statement: str, has_history: bool, message: str) -> PromptFeatures:
        problem = ProblemContext("", title, statement)  # the fields problem_terms reads
        tokens = message.split()
        words = sum(1.5 if HANGUL_CHAR.search(t) else 1.0 for t in tokens)
        questions = len(re.findall(r"[?？]", prose(message)))
        return cls(
            words=words,
            questions=questions,
            tried=bool(_TRIED.search(message)),
            expected=bool(_EXPECTED.search(message)),
            observed=bool(_OBSERVED.search(message)),
            code=bool(_CODE_LIKE.search(message)),
            formatted_code=contains_code(message),
            numbers=bool(_NUMBERS.search(message)),
            complexity=bool(_COMPLEXITY.search(message)),
            problem_terms=tuple(sorted(content_terms(message) & problem_terms(problem))),
            history_ref=has_history and bool(_HISTORY_REF.search(message) or FOLLOW_UP.search(message)),
            low_effort=bool(LOW_EFFORT.search(message)),
            pushback=bool(PUSHBACK.search(prose(message))),
            verified=bool(VERIFIED.search(message)),
            directives=len(_DIRECTIVE.findall(message)),
        )


@memo
def _features(title: str, statement: str, has_history: bool, message: str) -> PromptFeatures:
    """PromptFeatures.of by what it reads: the rule features, the rubric of the learned
    intent and the rules' own rubric score all read the same message. Only `history_ref`
    depends on whether an earlier turn exists, so the rest is read once per message: the
    tutor reads a later turn's message without its conversation (the hint plan's
    guardrail) and with it (the guardrail in context), ~0.2 ms each."""
    alone = _message_features(title, statement, message)
    if has_history and (_HISTORY_REF.search(message) or FOLLOW_UP.search(message)):
        return replace(alone, history_ref=True)
    return alone


@memo
def _message_features(title: str, statement: str, message: str) -> PromptFeatures:
    return PromptFeatures._read(title, statement, False, message)
