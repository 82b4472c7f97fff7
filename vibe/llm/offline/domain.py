"""Is a message about programming at all? The share of its words that belong to the
vocabulary of code, algorithms and the coding test, in English and Korean.

Off-topic messages were the guardrail's largest miss: a question about rent, a tip or a
quarrel shares no n-gram with the off-topic lines of the corpus, because its subject is
new, while almost every message the tutor should answer names something from the
domain (a loop, an index, the test, the hint). The lexicon below is written from the
domain, not from the corpus: general programming and CS terms, the Python names that are
not everyday English too, the coding test's own words, code itself, and the problem
statement's terms (passed in). Words that are as often everyday English (set, key, class,
case of a phone, 실수 as a mistake) are left out: a hit must mean the domain. The
learned guardrail weighs the share against everything else it reads (learned.py); the
share alone refuses nothing.
"""

from __future__ import annotations

import re

from vibe.llm.memo import memo


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EN = _words(
    """
algorithm algorithms array arrays list lists loop loops iterate iterating iteration iterator iterators function
functions method methods variable variables var vars index indices indexes indexing complexity recursion recursive
recurse graph graphs node nodes vertex vertices edge edges tree trees subtree root sort sorted sorting hash hashes
hashing hashmap hashset dict dicts dictionary dictionaries map maps mapping set sets queue queues stack stacks heap
heaps heapq deque input inputs output outputs print prints printed printing return returns returned returning test
tests tested testing testcase testcases bug bugs buggy debug debugging debugger error errors exception
exceptions traceback runtime memory timeout tle answer answers code codes coding coded program programs programming
programmer compile compiler compiles syntax string strings substring substrings subsequence subarray subarrays char
chars character characters integer integers int ints float floats digit digits counter pointer pointers window windows
sliding prefix prefixes suffix suffixes binary search searching linear dynamic dp memo memoize memoization greedy
brute optimal optimize optimizing optimization optimise efficient efficiency quadratic logarithmic asymptotic python
java javascript typescript cpp rust golang kotlin pseudocode snippet implementation implement implementing implemented
solve solved solving solution solutions hint hints tutor problem problems statement constraint constraints example
examples sample samples submit submission submissions grader grading graded rubric matrix cycle cycles cyclic acyclic
dag dfs bfs topological ordering dependency dependencies duplicate duplicates unique distinct element elements tuple
tuples range ranges bool null length len append pop insert struct typed typing parse parsing parser readline stdin
stdout newline whitespace split join performance overflow underflow off-by-one boundary boundaries invariant
invariants correctness counterexample regex regexp git commit library libraries module modules import imports stdlib
builtin parameter parameters argument arguments args kwargs callback declare declared assign assignment initialize
initialise bracket brackets parenthesis parentheses nested nesting brace braces interval intervals segment fenwick
bitmask bitwise modulo mod lambda generator comprehension slicing mutable immutable reference shallow o(n) o(1) big-o
loop-invariant merge mergesort quicksort heapsort dijkstra kruskal prim union-find disjoint memoized tabulation
backtracking permutation permutations combination combinations subset subsets bit bits byte bytes ascii unicode utf-8
encoding decode encode assert assertion unittest pytest edgecase compile-time runtime-error indentation indent
variable-name naming refactor refactoring readable readability docstring annotation annotations hint-ladder f-string
fstring format formatting decimal decimals precision rounding sum lifo fifo indegree in-degree outdegree out-degree
leetcode hackerrank codeforces benchmark computation computational compute computing computer cpu ram cache caching
processor thread threads threading concurrency operation operations op ops instruction instructions word-size bitset
data dataset file files json csv yaml xml api apis endpoint database query queries sql repo repository deploy
framework interpreter cpython pypy jit amortized worst-case best-case average-case upper-bound lower-bound big-theta
theta omega asymptotically polynomial exponential factorial fibonacci primes gcd lcm modular exponent sqrt logarithm
log2 nlogn n^2 ceil mock fixture fixtures coverage assertions brute-force stderr infinite terminate terminates
recursionerror indexerror keyerror typeerror valueerror attributeerror nameerror syntaxerror zerodivisionerror
memoryerror stackoverflow segfault
"""
)
# Korean terms match at the start of a word (particles and endings follow them: 배열을,
# 정렬하면); the one-syllable ones (_KO_SHORT) only as the whole word or before a particle.
_KO = tuple(
    sorted(
        _words(
            """
알고리즘 배열 리스트 루프 함수 메서드 메소드 변수 인덱스 복잡도 재귀 그래프 노드 정점 간선 트리 정렬 딕셔너리 집합 입력 출력 프린트 리턴 테스트 테케 버그 디버그 디버깅 에러
오류 예외 런타임 메모리 시간초과 오답 정답 코드 코딩 코테 프로그램 프로그래밍 컴파일 문법 문자열 문자 정수 숫자 자릿수 합계 누적합 부분합 개수 카운트 최댓값 최솟값 포인터
투포인터 윈도우 슬라이딩 접두 접미 이분 이진 탐색 선형 동적 메모이제이션 그리디 탐욕 완전탐색 브루트 최적화 빅오 파이썬 자바 자바스크립트 러스트 의사코드 슈도코드 구현 풀이
해답 힌트 튜터 문제 제약 조건 예제 예시 샘플 엣지 제출 채점 시험 행렬 그리드 경로 사이클 깊이우선 너비우선 위상 중복 고유 원소 튜플 구간 불리언 클래스 객체 타입 자료형
자료구조 파싱 성능 오버플로 불변 반례 정규식 정규표현식 라이브러리 모듈 임포트 내장 매개변수 파라미터 인자 인수 호출 선언 할당 초기화 괄호 중첩 비트연산 비트마스크 연산자
조건문 반복문 들여쓰기 주석 리팩터 리팩토링 가독성 스택 머지 소트 병합 정복 다익스트라 유니온 세그먼트 펜윅 좌표 압축 연산량 연산 컴퓨터 프로세서 스레드 프로세스 캐시 데이터
파일 서버 클라이언트 데이터베이스 쿼리 저장소 브랜치 배포 프레임워크 인터프리터 상각 다항 팩토리얼 피보나치 소수판별 최대공약수 최소공배수 모듈러 로그 나이브 무한루프 크래시
타임아웃 시간제한 메모리제한 제한시간 부동 소수점 나눗셈 반올림 오차 경고 진입차수 차수 백트래킹 순열 부분집합 인코딩 유니코드 어서트 예외처리 슬라이싱 람다 제너레이터 해시맵
해시셋 해싱 해시테이블
"""
        )
    )
)
_KO_SHORT = _words("합 행 열 값 키 쌍 줄 답 몫 곱 덱 맵 셋 큐 힙")
_KO_PARTICLE = re.compile(r"(?:으로|에서|이랑|에는|에도|이나|은|는|이|가|을|를|에|의|로|와|과|랑|도|만|요)$")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9+\-'.()]*|[가-힣]+")
# Code in the message: a backtick, a name with an underscore, a call, an index, an operator
# or comparison (j=1, n^2), an attribute (typing.List), a format spec (:.6f), a tuple, a
# camelCase name, or a one-letter variable (k, n; not the words "a", "I" or texting's "u").
_CODE = re.compile(
    r"`|\w_\w|\w\(|\w\[|[=<>!+\-*/^%]=|->|\w\s?[=^<>]\s?[\w\-]|[a-z]\.[A-Za-z]|:\.\d|\(\d+,|[a-z][A-Z]|-inf\b"
    r"|(?<![A-Za-z'])[b-hj-tv-zB-HJ-TV-Z](?![A-Za-z'])"
)
# Python's names that are not also everyday English words ("for", "and", "help" are).
_PYTHON = _words(
    "def elif lambda nonlocal yield async await none len enumerate isinstance zip str dict tuple frozenset bytearray "
    "iter sorted reversed divmod ord chr repr hasattr getattr setattr staticmethod classmethod self init main "
    "inf nan float int bool"
)


def _is_domain(word: str, extra: frozenset[str]) -> bool:
    if word[0] <= "\u007f":
        w = word.lower().strip("'.-").removesuffix("'s")
        if not w:
            return False
        if "-" in w and any(part in _EN for part in w.split("-")):
            return True  # sliding-window, off-by-one
        if w in _EN or w in _PYTHON or w in extra:
            return True
        # plurals and verb forms: tests, sorting, indexed
        return any(w.endswith(end) and w[: -len(end)] in _EN for end in ("s", "es", "ing", "ed", "d"))
    if word in extra or _KO_PARTICLE.sub("", word) in _KO_SHORT:
        return True
    return word.startswith(_KO)


@memo
def domain_share(message: str, extra: frozenset[str] = frozenset()) -> tuple[int, float]:
    """(words, share of them that are programming or test vocabulary); code in the message
    counts as one more domain word."""
    head = message[:2000]  # the head of a long message says what it is about
    words = _TOKEN.findall(head)
    if not words:
        return (0, 0.0)
    hits = sum(_is_domain(w, extra) for w in words) + (1 if _CODE.search(head) else 0)
    return (len(words), min(1.0, hits / len(words)))
