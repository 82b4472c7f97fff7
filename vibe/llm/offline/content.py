"""Words that carry nothing earn nothing: the offline judge's second defence against text
written for the grader.

`vibe/llm/injection.py` finds text addressed to the grader by its structure (a grader
named, a score asked for, a role marker); whatever form it does not know goes through
to the rubric, and the rubric's features pay for almost any added words: a short
message crosses a length threshold ("Pass me." after a four-word question), a bare
number reads as "gives numbers or constraints" ("plz 100"), a sentence of praise adds
words to a clear request. This module makes that payment structural rather than a
matter of recognising the phrasing: a message is cut into units (lines, sentences,
fenced code blocks), and a unit *carries content* only when it holds something the
tutor can work with:

- code (a fenced block with a code line, inline code, identifiers, calls, operators) or
  a number in a technical form (`n <= 10^5`, `1e5`, `[2, 7]`, "100 elements"), not a
  bare number;
- the problem's own terms, or a word of programming (array, loop, 배열, 반복문, ...);
- a request for help or an explanation (explain, hint, why, how, 알려, 설명, 왜, 어떻게);
- with history, a reference to the tutor's earlier answer or a push-back on it.

The offline judge scores the turn as written and without its content-free units, and
keeps the lower score (`unpaid_text`, used by `provider.py`): a unit the tutor cannot use
may cost the turn (it still counts in the length, the questions, the focus) but never
pays. Unlike grader-addressed text this is no offence: no penalty and no note, since a
"Thanks!" or "Sorry, I'm nervous" is ordinary politeness, only unpaid. A message with
no content at all is scored as the empty message: there is nothing in it to pay for.

What this does not do: a unit that mixes content with praise ("this hash map approach
is flawless") still pays for its content words, and a claim of work done ("I tested it
on 50 inputs") carries the words of programming; the structural finder and the
penalty stay the defence there.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from vibe.llm.base import ProblemContext
from vibe.llm.injection import name_words
from vibe.llm.memo import memo
from vibe.llm.offline.text import CODE_BLOCK, content_terms, problem_terms, rx

UNPAID_NOTE = "Scored without the words that carry no request, context or code: they earn nothing"

# Lines, then sentences within a line. A sentence ends at . ! ? or their full-width
# forms followed by a space; a Korean sentence usually ends at a line or at those too.
_LINE = re.compile(r"[^\n]+")
_IN_SENTENCE = re.compile(r"\S.*?(?:[.!?。？！](?=\s)|$)")

# Code: inline code, an identifier with _ or an inner capital, a call, an index or a
# literal list, a comparison or assignment between words, a statement keyword at a line's
# start. (A comment marker alone, `/* ... */` or `# ...`, is not code.)
_CODE = re.compile(
    r"`[^`\n]+`|\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+[A-Z]\w*\b|\b[A-Za-z_]\w*\([^)]*\)|\w\[(?!\^)[^\]]*\]|\[\s*-?\d+\s*(?:,\s*-?\d+\s*)+\]|"
    r"\w\s*(?:==|!=|<=|>=|\+=|-=|=>|->)\s*\w|^\s*(?:def|for|while|if|return|class|import|let|const|int|vector)\b|"
    # a one-letter variable (n, k, i, j: not "a" or "I"), arithmetic with a letter in it
    # ("n-1", "i<j"; not "10/10"), an error's name, a short quoted token ('()', "")
    r"(?<![\w'.])[b-hj-zNMK](?![\w'+]|\.\w\.)|(?<!\w)[a-z]\s*[-+*%<>]\s*[\w(]|\w\s*[-+*%<>]\s*[a-z](?!\w)|\b\w+(?:Error|Exception)\b|'[^\s']{0,8}'",
    re.MULTILINE,
)
_COMMENT_LINE = re.compile(r"^\s*(?:#|//|/\*|\*|--|\"\"\"|''')")

# A number in a technical form: a bound or a size, an exponent, a complexity, a literal
# list, a number beside the noun it counts. A bare "100" or "10/10" is not one.
_TECHNICAL_NUMBER = rx(
    r"\b[a-z]\s*(?:<=|>=|<|>|≤|≥|=)\s*-?\d|\d\s*(?:<=|>=|<|>|≤|≥)\s*[a-z]\b|\d\s*\^\s*\d|\b\d+e\d+\b|\bO\([^)]*\)|"
    r"\b\d[\d,.]*\s*(?:elements?|items?|numbers?|values?|nodes?|edges?|vertices|rows?|columns?|chars?|characters?|"
    r"digits?|bits?|bytes?|ms|seconds?|inputs?|cases?|queries|operations?|iterations?|times|steps?|entries)\b|"
    r"\d+\s*(?:개|번째|번|초|자리|줄|명|회|단계|밀리초)"
)

# Words of programming and of the work on a problem, English and Korean (Korean matched
# inside words: particles attach to them). Generic, not any problem's own vocabulary
# (problem_terms brings that); a word a grader note needs ("score", "points", "grade",
# "pass", "marks", "prompt") is not one of them.
_PROGRAMMING = rx(
    r"\b(?:code|coding|function|functions|method|class|variable|variables|loop|loops|nested|array|arrays|list|lists|"
    r"dict|dictionary|hash\w*|map|set|sets|tuple|string|strings|substring|char|character|integer|integers|int|float|"
    r"index|indices|indexes|pointer|pointers|node|nodes|edge|edges|graph|tree|vertex|vertices|queue|stack|heap|"
    r"sort|sorts|sorted|sorting|search|binary|recursion|recursive|recurse|iterate|iteration|iterative|traverse|traversal|"
    r"algorithm|algorithms|approach|complexity|runtime|memory|input|inputs|output|outputs|return|returns|returned|"
    r"returning|value|values|key|keys|element|elements|item|items|count|target|pair|pairs|duplicate|duplicates|"
    r"order|range|bound|bounds|limit|limits|constraint|constraints|test|tests|testing|tested|testcase|example|examples|"
    r"error|errors|exception|bug|bugs|crash|crashes|fails?|failing|failed|wrong|incorrect|timeout|tle|overflow|"
    r"null|none|empty|negative|length|size|python|java|javascript|typescript|c\+\+|cpp|compile|compiler|syntax|type|"
    r"parameter|argument|arguments|call|calls|condition|branch|case|cases|matrix|grid|path|paths|cycle|visit|visited|"
    r"dp|memo|memoization|cache|greedy|bfs|dfs|dijkstra|debug|debugging|optimi[sz]e|optimi[sz]ation|implement|"
    r"implementation|compute|calculate|logic|step|steps|print|prints|printed|pseudocode|solve|solving|"
    r"edge-case|invariant|boundary|off-by-one|brute|force|quadratic|linear|logarithmic|faster|slower|slow|"
    r"efficient|efficiency|speed|fast|performance|works?|working|doesn'?t\s+work|stuck|confused|understand|approach|idea|concept|trick|"
    r"left|right|window|windows|merge|structure|helper|sliding|indegree|degree|sums?|prefix|suffix|precision|query|queries|rank|ranks|"
    r"compression|fenwick|kahn|cycles|data|format|formatting|tolerance|append|pop|push|insert|remove|delete|brute|split|numpy|"
    r"slice|slicing|adjacency|hidden|samples?|checker|segfault|lookup|distinct|zero|averages?|testcases?|shrinks?|grows?|ints|"
    r"line|lines|position|program|math|total|generator|random|negatives?|ties|greater|smaller|less|double|version|matches|"
    r"bits?|bytes?|overflow|mod|modulo|floats?|decimal|expected|expect|answers?|verify|inversions?|depth|height|width|"
    r"prime|digits?|parse|read|stdin|stdout|newline|whitespace|spaces?|"
    r"quiz|markdown|bullet|bullets|sentences?|casual|style|tone|praise|intro|analogy|analogies|language|"
    r"from\s+now\s+on|going\s+forward|whenever|(?:one|two|three)\s+(?:question|sentence|line)s?)\b"
    r"|코드|함수|메서드|메소드|클래스|변수|반복문|루프|중첩|배열|리스트|딕셔너리|사전|해시|맵|집합|튜플|문자열|문자|정수|실수|"
    r"인덱스|포인터|노드|간선|엣지|그래프|트리|정점|큐|스택|힙|정렬|탐색|검색|이진|재귀|순회|알고리즘|접근|풀이|복잡도|"
    r"메모리|입력|출력|반환|리턴|원소|요소|타겟|목표|중복|순서|범위|제약|조건|케이스|예외|테스트|예제|예시|에러|오류|버그|"
    r"틀려|틀렸|틀린|시간\s*초과|오버플로|음수|길이|크기|파이썬|자바|컴파일|문법|타입|매개변수|인자|호출|분기|행렬|격자|"
    r"경로|사이클|방문|디피|메모이제이션|캐시|그리디|너비\s*우선|깊이\s*우선|다익스트라|디버깅|최적화|구현|계산|로직|단계|"
    r"의사\s*코드|막혔|막혀|막히|모르겠|이해|개념|방법|아이디어|작동|동작|안\s*돼|안\s*되|안\s*나와|속도|빠르|빠른|느리|느린|성능|"
    r"왼쪽|오른쪽|괄호|정답|개수|위치|진입\s*차수|차수|칸씩|테케|방식|비교|방향|갱신|평균|반례|오차|기준|결과|최대|최소|이중|"
    r"숫자|상수|펜윅|윈도우|개행|기대값|예제|더하|빼|나머지|누적|구간|부분\s*합|스왑|합치|나누|곱하|자리|소수|"
    r"값|짝|조회|깊이|걸쳐|높이|너비|"
    r"반말|존댓말|칭찬|본론|짧게|길게|자세히|말투|표로|그림|이모지|한\s*줄|문장|답해|답하|질문|앞으로|다음\s*답부터"
)

# A request for help or an explanation, or a question about how or why.
_REQUEST = rx(
    r"\b(?:help|hint|hints|explain|explanation|clarify|walk\s+me\s+through|guide|suggest|recommend|why|how|which|"
    r"what(?:'s|\s+is|\s+are|\s+does|\s+do|\s+should|\s+would|\s+if|\s+about)|where|when\s+(?:should|does|do|is)|"
    r"answer|reply|respond|english|korean)\b"
    r"|힌트|설명|알려|도와|가르쳐|짚어|왜|어떻게|어디서|어디가|어느|무엇|뭐가|뭘|무슨|한국어|영어|답변|대답"
)

# With history: the tutor's earlier answer referred to, or doubted.
_ABOUT_THE_ANSWER = rx(
    r"\b(?:you\s+(?:said|mentioned|suggested|told)|your\s+(?:previous|last|earlier|answer|reply|hint|suggestion|example|"
    r"explanation)|that\s+hint|the\s+hint|earlier|previous|are\s+you\s+sure|is\s+that\s+(?:right|true|correct)|"
    r"i\s+(?:don'?t\s+think|doubt|disagree)|counter-?example|continue|go\s+on|next)\b"
    r"|아까|방금|이전|말씀하신|말한|그\s*힌트|정말|확실|반례|계속|다음"
)


def problem_vocabulary(problem: ProblemContext) -> frozenset[str]:
    return _vocabulary(problem.title, problem.statement)


@memo
def _vocabulary(title: str, statement: str) -> frozenset[str]:
    return problem_terms(ProblemContext("", title, statement))


# A claim of work done that the transcript cannot show: checked, tested, verified, all
# passing. Such a unit pays only with its evidence beside it: code, concrete values (a
# literal, a call, an assignment), or the failure it observed (a candidate asking for help
# with what broke has no reason to invent it).
_CLAIM = rx(
    r"\b(?:i\s+(?:have\s+|'ve\s+|already\s+)*(?:checked|double-checked|tested|verified|validated|confirmed|ran|traced|proved|"
    r"made\s+sure|went\s+through|compared)|(?:checked|double-checked|tested|verified|validated|confirmed|proven|proved|reviewed)\b|"
    r"^\W*(?:already\s+)?(?:ran|tested|checked|compared|verified|proved|traced|benchmarked)\b|"
    r"all\s+(?:of\s+them\s+)?(?:pass|passed|work|worked|correct|green)|passes\s+(?:all|every)|works\s+(?:for\s+)?(?:all|every)|"
    r"\d+\s*%\s*(?:green|pass\w*|correct)|(?:said|says)\s+(?:it'?s|it\s+is)\s+(?:correct|right|fine|optimal)|"
    r"identical\s+on|no\s+need\s+to\s+(?:double[\s-])?check|"
    # the check as a noun with its outcome: "verification done", "validation: complete", "all checks green"
    r"(?:verification|validation|testing|tests|checks?|review|stress[\s-]?tests?)\s*[:\-]?\s*(?:done|complete[d]?|finished|passed|ok|green|success\w*)|"
    r"(?:0|zero|no)\s+(?:mismatch\w*|diffs?|differences?|failures?|errors?)\b(?!\s*(?:in|on|at|when|but)\b))"
    r"|검증|확인\s*(?:했|해\s*봤|해봤|완료)|테스트\s*(?:했|해\s*봤|해봤|완료)|돌려\s*(?:봤|보니)|돌렸|다\s*(?:맞|통과|괜찮)|"
    r"모두\s*(?:맞|통과|괜찮)|전부\s*(?:맞|통과|괜찮)|통과했|문제\s*없었|이상\s*없|"
    # the check finished ("확인 끝났습니다", "테스트해서 문제없는"), said with an English verb or
    # result ("validate 해봤는데 모두 correct")
    r"(?:확인|테스트|검사|체크|점검)\s*(?:끝|마쳤|마침|해서|하여|해\s*보니)|"
    r"(?:validat\w*|verif\w*|test\w*|check\w*|run|ran|compare\w*)\s*(?:해\s*봤|해봤|했|함|해\s*보니)|"
    r"(?:모두|전부|다)\s*(?:correct|pass\w*|ok|green|success\w*)"
)
# What shows a claimed check rather than asserting it: code beyond a size (a call, an
# identifier, a literal list, a comparison, an error's name) or the failure it observed.
_EVIDENCE = re.compile(
    r"`[^`\n]+`|\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+[A-Z]\w*\b|\b(?!O\()[A-Za-z_]\w*\([^)]*\)|\w\[[^\]]*\]|"
    r"\[\s*-?\d+\s*(?:,\s*-?\d+\s*)+\]|\w\s*(?:==|!=)\s*\w|\b\w+(?:Error|Exception)\b"
)
# Asked of whoever reads the transcript, not of the tutor: leniency, something to keep in
# mind, a turn not to be counted.
_APPEAL = rx(
    r"\b(?:take\s+(?:that|this|it)\s+into\s+account|keep\s+(?:that|this)\s+in\s+mind|go\s+easy|be\s+(?:lenient|generous|kind)|"
    r"(?:count|held|hold\s+it)\s+against\s+me|no\s+need\s+to\s+nitpick|give\s+me\s+credit|credit\s+for|"
    r"(?:not|n't|never|no\s+need\s+to)\s+(?:\w+\s+)?(?:penali[sz]e|dock|deduct|mark\s+(?:me\s+)?down))\b"
    r"|감안|참작|봐\s*주세요|봐주|너그럽|후하게|좋게\s*봐"
)
# What the message itself contains, listed by its writer ("note how I've given the
# constraints and the expected output", "맥락, 제약조건 다 넣었어요"): about the prompt.
_ABOUT_ITS_CONTENTS = rx(
    r"\b(?:note\s+how|notice\s+how|as\s+you\s+can\s+see)\b|\bi(?:'ve|\s+have)?\s+(?:given|included|provided|stated|listed|covered)\s+"
    r"(?:\w+\s+){0,2}?(?:all|every|the\s+(?:constraints?|context|input\s+size|expected\s+output))"
    r"|(?:다|모두|전부)\s*(?:넣었|적었|포함했|담았|썼어)"
    # the writer narrated in the third person, or the message pointed at from outside it
    r"|\b(?:the|this)\s+candidate\b|\b(?:the|this)\s+(?:request|message|question|prompt|turn)\s+above\b|지원자|응시자"
)

_FAILURE = rx(
    r"\b(?:fail\w*|error\w*|wrong|crash\w*|time[sd]?\s*out|timeout|tle|exception|incorrect|doesn'?t\s+work|didn'?t\s+work|"
    r"not\s+work\w*|breaks?|broke|instead\s+of|but\s+(?:got|it|returns?|prints?)|slow|too\s+long|takes|took)\b"
    r"|틀려|틀렸|틀린|에러|오류|안\s*(?:돼|되|나와|맞)|실패|시간\s*초과|대신|터져|죽어|느려|느린|오래\s*걸"
)


# A command that was run, in inline code (`pytest -q`, `diff expected.txt actual.txt`,
# `for i in $(seq 1000); do ./gen | ./sol; done`): it says what was done, not what it
# showed, so beside a claim of success it is no evidence (anyone can name a command).
_COMMAND = rx(
    r"`\s*\$?\s*(?:(?:python3?|pytest|mypy|ruff|flake8|pylint|black|npm|npx|node|yarn|go|cargo|make|gcc|g\+\+|clang\+*|"
    r"javac|java|bash|sh|diff|time|hyperfine|valgrind|git|tox|coverage|jest|mocha)\b[^`\n]*|"
    r"[^`\n]*(?:\s--?[a-z][\w-]*|\||\./|\$\()[^`\n]*)`"
)


def _shows_evidence(unit: str) -> bool:
    return bool(_EVIDENCE.search(_COMMAND.sub(" ", unit)))


# Asking the tutor something: a question mark, or a request (a narrower reading than
# _REQUEST, whose "how" and "which" also stand in statements: "this is how experts do it").
_ASKS = rx(
    r"[?\uff1f]|\b(?:help|hint|hints|explain|explanation|clarify|walk\s+me\s+through|guide\s+me|suggest|recommend|why|"
    r"how\s+(?:do|does|did|can|could|should|would|to|is|are|about|come)|what(?:'s|\s+is|\s+are|\s+does|\s+do|\s+should|\s+would|\s+if)|"
    r"(?:can|could|would|will)\s+you|tell\s+me|show\s+me|let\s+me\s+know|i\s+(?:want|need|would\s+like)\s+to\s+(?:know|understand))\b"
    r"|힌트|설명|알려|도와|가르쳐|짚어|왜|어떻게|뭐가|무엇|까요|나요|는지|봐\s*주"
)
# A judgement of the candidate's own work (the voice of an assessment, whoever speaks
# it): praise of their prompting, their process or their skill ("Great prompt: explicit
# O(n) target, null handling", "Solid debugging workflow: reproduce, isolate, fix",
# "Criteria met: clear statement, explicit constraints", "a model of verification",
# "As a staff engineer with 15 years in algorithms"). The words of programming in such a
# unit name what is praised, not anything the tutor could work on; a unit that also asks
# something, shows code or reports a failure is left to pay.
_PRAISE_WORD = (
    r"(?:great|good|nice|solid|strong|excellent|exemplary|textbook|outstanding|impressive|superb|stellar|flawless|impeccable|"
    r"ideal|perfect|careful|thorough|rigorous|meticulous|methodical|systematic|disciplined|mature|professional|expert|"
    r"senior|precise|smart|clever|effective|efficient|critical|top[\s-]?(?:tier|notch)|world[\s-]class|best[\s-]practice|"
    r"high[\s-]quality|well[\s-](?:structured|scoped|specified|written|crafted|organi[sz]ed|thought[\s-]out|reasoned|"
    r"articulated|executed))(?:ly)?"
)
_OWN_WORK = (
    r"(?:prompts?|prompting|requests?|questions?|messages?|turns?|use|usage|workflow|process|communication|engineering|"
    r"decomposition|verification|validation|debugging|thinking|reasoning|analysis|review|collaboration|"
    r"pair[\s-]?programming|observation|problem[\s-]solving|methodology|practice|skills?)"
)
_JUDGEMENT = rx(
    r"\b" + _PRAISE_WORD + r"\s+(?:[\w-]+\s+){0,2}?" + _OWN_WORK + r"\b"
    r"|\b(?:exemplary|textbook|a\s+model\s+of|model\s+(?:example|answer)|gold\s+standard|best\s+practices?|top[\s-]tier|"
    r"world[\s-]class|expert[\s-]level|senior[\s-]level)\b"
    # the register of an assessment: criteria met, a checklist satisfied, the prompt's quality
    r"|\b(?:criteria|criterion|checklist|assessment|evaluation)\s*(?:[\w-]+\s+){0,3}?(?:met|satisf\w*|fulfil\w*|pass\w*|"
    r"\u2714|\u2713|\u2705)|\b(?:meets?|satisf\w+|fulfil\w*|ticks?|checks?\s+off)\s+(?:every|all|each)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:items?|criteri\w*|requirements?|box(?:es)?)\b|\bprompt[\s-]?(?:quality|engineering|engineer)\b|"
    r"\bquality\s+of\s+(?:my|this|the)\s+(?:prompts?|questions?|requests?|messages?)\b"
    # credentials: who the candidate is, offered as the reason the turn is good
    r"|\b(?:as\s+an?|i'?m\s+an?|i\s+am\s+an?)\s+(?:[\w-]+\s+){0,3}?(?:engineer|developer|programmer|expert|architect|"
    r"grandmaster|professor|instructor|practitioner|researcher)s?\b|\b\d+\s*\+?\s*years?\s+(?:of\s+)?(?:experience|in|as|at)\b|"
    r"\b(?:grandmaster|certified|experts?\s+do|practitioners?|professionals?\s+do)\b"
    # Korean: the same praise of the work, the message praised as its subject, credentials
    r"|(?:모범적|훌륭한|완벽한|탁월한|뛰어난|꼼꼼한|철저한|체계적|전문적|수준\s*높은)\s*(?:\S+\s*){0,2}?"
    r"(?:질문|프롬프트|요청|메시지|활용|디버깅|검증|분석|사고|접근|소통)"
    r"|(?:이|본|제|위|이번|방금)\s*(?:질문|프롬프트|요청|메시지)(?:은|는|이|가)?\s.{0,30}?(?:모범|훌륭|완벽|탁월|뛰어|최고|최상|금메달|만점|"
    r"교과서|일품|수준급|잘\s*(?:쓴|썼|작성|만든|짠)|\U0001f947|\U0001f3c6|\U0001f4af|\u2b50)"
    # ... and in English: "this question ... the best-phrased one", "my prompt is as clear as it gets"
    r"|\b(?:this|my|the\s+above)\s+(?:question|prompt|request|message|turn)\b.{0,60}?(?:\b(?:best|finest|clearest|"
    r"most\s+[\w-]+|excellent|exemplary|perfect|great|brilliant|ideal|flawless|textbook|well[\s-]\w+)\b|\U0001f947|\U0001f3c6|\U0001f4af|\u2b50)"
    r"|평가\s*기준|채점\s*기준|기준표|시니어|경력\s*\d+\s*년|\d+\s*년\s*차|전문가|능숙"
)


def _code(unit: str, problem_vocabulary: frozenset[str]) -> bool:
    """Code in `unit` (_CODE) other than names that speak of the grading: a call or an
    identifier made of such words (`prompt_quality(this_turn)`, `test_prompt_is_specific`,
    `evaluate(prompt)`) is a verdict dressed as code, unless the problem itself uses the
    word (a game's `turn`)."""
    return any(not _grading_name(m.group(0), problem_vocabulary) for m in _CODE.finditer(unit))


# Only words no code about a problem needs unless the problem says them: "score",
# "grade" or "rating" name a candidate's own variables too (`best_score` in a DP), so a
# grade dressed as code names the prompt, the turn, its quality or the grading itself.
_META_NAME = rx(r"prompt|prompts|prompting|quality|grader|grading|rubric|verdict|evaluator|criteria|criterion|turn")


def _grading_name(code: str, problem_vocabulary: frozenset[str]) -> bool:
    if code.startswith("`"):
        return False  # inline code quoted whole is what the candidate is working on (`<div class="score">`)
    return any(_META_NAME.fullmatch(w) and not _in_problem(w, problem_vocabulary) for w in name_words(code))


def _in_problem(word: str, problem_vocabulary: frozenset[str]) -> bool:
    # A statement that says "scores" has `score` in its code too.
    return (
        word in problem_vocabulary or f"{word}s" in problem_vocabulary or word.removesuffix("s") in problem_vocabulary
    )


# Marks, grades and their like (the candidate's, not the problem's data: a problem whose
# statement says "score" makes the word content).
_GRADING = rx(
    r"\b(?:scores?|scored|scoring|grades?|graded|grading|marks|points|rating|rated|rate|band|"
    r"a\+|[0-9]+\s*/\s*[0-9]+)(?!\w)|점수|만점|등급|감점|가산점|학점|채점|평가"
)
# The candidate's own message or prompting, praised or graded ("a model example of clear
# prompting", "완벽한 질문이죠?", "my prompts are always efficient").
_ABOUT_THE_PROMPT = rx(
    r"\b(?:prompting|my\s+prompts?|(?:this|the|my|a|an)\s+(?:\w+\s+){0,3}?(?:prompt|question|message|turn|request)\s+"
    r"(?:is|was|exhibits|shows|demonstrates|hits|deserves|looks|reads)|"
    r"(?:good|great|perfect|ideal|model|exemplary|textbook|excellent|outstanding|flawless|top-tier|high-quality|"
    r"well-written|well-scoped|clear|specific|concise|efficient|strong)\s+(?:\w+\s+){0,2}?"
    r"(?:prompts?|questions?|messages?|requests?|prompting|candidate|use\s+of\s+ai)|"
    r"(?:critical\s+thinking|skepticism|discernment|rubric|every\s+mark|prompt[\s-]?(?:quality|engineering)))\b"
    r"|(?:좋은|완벽한|모범적인|훌륭한|잘\s*쓴|정확한|명확한|구체적인|깔끔한)\s*(?:\S+\s*){0,2}?(?:질문|프롬프트|메시지|요청)|"
    r"질문\s*(?:quality|퀄리티|수준)|비판적\s*사고|모범|군더더기"
)
_QUESTION = re.compile(r"[?？]")


def _units(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each unit: fenced code blocks whole, then every other line's
    sentences, never cut inside `inline code` (which may hold dots and line breaks)."""
    masked = _INLINE_SPAN.sub(lambda m: "x" * len(m.group(0)), text)
    units: list[tuple[int, int]] = []
    pos = 0
    for block in CODE_BLOCK.finditer(text):
        units += _prose_units(masked, pos, block.start())
        units.append(block.span())
        pos = block.end()
    return units + _prose_units(masked, pos, len(text))


def _prose_units(masked: str, start: int, end: int) -> list[tuple[int, int]]:
    return [
        m.span() for line in _LINE.finditer(masked, start, end) for m in _IN_SENTENCE.finditer(masked, *line.span())
    ]


_INLINE_SPAN = re.compile(r"`[^`]{1,400}`")


def _fence_has_code(block: str, problem_vocabulary: frozenset[str]) -> bool:
    """A fenced block holds code when a line of it is neither a comment nor a statement
    about the grading (`assert prompt_quality(this_turn) == 'excellent'`: a line that names
    the grading is a verdict dressed as code, whatever literal stands beside the name)."""
    lines = block.strip("`").splitlines()[1:] or block.strip("`").splitlines()
    return any(
        line.strip()
        and not _COMMENT_LINE.match(line)
        and not any(_grading_name(m.group(0), problem_vocabulary) for m in _CODE.finditer(line))
        for line in lines
    )


def carries_content(unit: str, problem_vocabulary: frozenset[str], has_history: bool) -> bool:
    """True when `unit` holds something the tutor can work with (the module docstring)."""
    if unit.lstrip().startswith("```"):
        return _fence_has_code(unit, problem_vocabulary)
    if _COMMENT_LINE.match(unit):
        unit = _COMMENT_LINE.sub("", unit, count=1)
    if _CLAIM.search(unit) and not (_shows_evidence(unit) or _FAILURE.search(unit)):
        # A check claimed with nothing shown (a command named is not what it showed): what
        # the rubric would pay for is the claim.
        return False
    if _APPEAL.search(unit) and not _EVIDENCE.search(unit):
        return False
    code = _code(unit, problem_vocabulary)
    if (_ABOUT_THE_PROMPT.search(unit) or _ABOUT_ITS_CONTENTS.search(unit)) and not code:
        # Praise of the candidate's own prompting: an appeal to whoever grades it.
        return False
    if _JUDGEMENT.search(unit) and not (_ASKS.search(unit) or _shows_evidence(unit) or _FAILURE.search(unit)):
        # An assessment of the candidate's work, asking nothing (see _JUDGEMENT).
        return False
    grading = _GRADING.search(unit)
    if grading and grading.group(0).lower() not in problem_vocabulary and not code:
        # Talk about this turn's marks (not the problem's own "score" or "points"): an
        # appeal, whatever words of programming stand beside it.
        return False
    if has_history and _QUESTION.search(unit):
        return True  # a question in a conversation answers or asks about what was said
    return bool(
        code
        or _TECHNICAL_NUMBER.search(unit)
        or _PROGRAMMING.search(unit)
        or _REQUEST.search(unit)
        or content_terms(unit) & problem_vocabulary
        or (has_history and _ABOUT_THE_ANSWER.search(unit))
    )


def is_content_free(text: str, problem_vocabulary: frozenset[str], has_history: bool) -> bool:
    """True when no unit of `text` carries content."""
    return not any(carries_content(text[a:b], problem_vocabulary, has_history) for a, b in _units(text))


# Readings of a turn with content-free units: every subset of them cut while there are at
# most this many (2^n - 1 readings), else all of them cut and each one cut alone.
ALL_SUBSETS_UP_TO = 3


@memo
def unpaid_readings(text: str, problem_vocabulary: frozenset[str], has_history: bool) -> tuple[str, ...]:
    """`text` with its content-free units cut out, in several readings: () when every unit
    carries content. Each reading keeps everything else as written (only the space after
    a cut unit and lines left blank go).

    Why more than one: the rubric is not monotone (cutting a rambling unit can raise a
    score), so a turn is scored at the lowest of its readings; with every subset of the
    cuts among them, a unit added to a turn only adds readings, and the turn with it can
    never score above the turn without it (the judge's min over a superset)."""
    units = _units(text)
    cuts = [
        (start, end) for start, end in units if not carries_content(text[start:end], problem_vocabulary, has_history)
    ]
    # A message in which the rules recognise no content is not judged as empty on the
    # strength of a word list: at least one of its units stays in every reading.
    most = len(cuts) - 1 if len(cuts) == len(units) else len(cuts)
    if len(cuts) <= ALL_SUBSETS_UP_TO:
        chosen = [c for r in range(1, most + 1) for c in itertools.combinations(cuts, r)]
    else:
        chosen = [*([tuple(cuts)] if most == len(cuts) else []), *((c,) for c in cuts)]
    return tuple(_cut(text, subset) for subset in chosen)


def _cut(text: str, spans: Sequence[tuple[int, int]]) -> str:
    kept, pos = [], 0
    for start, end in spans:
        kept.append(text[pos:start])
        pos = end
        while pos < len(text) and text[pos] in " \t":
            pos += 1
    kept.append(text[pos:])
    return "\n".join(line for line in "".join(kept).splitlines() if line.strip()).strip()
