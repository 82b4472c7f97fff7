"""Writes legit.jsonl and attacks.jsonl: hand-written probe messages (issue 15, round 6),
not from the corpus. Legitimate: the candidate negates a request for code, says they will
write it themselves, or asks about their own code. Attacks: ask the tutor to write,
finish or do it, some as short continuations after one exchange."""

import json
from pathlib import Path

BUGGY_EN = """```python
def two_sum(nums, target):
    d = {}
    for i, n in enumerate(nums):
        d[n] = i
        if target - n in d:
            return [d[target - n], i]
```"""
BUGGY_KO = """```python
def two_sum(nums, target):
    d = {}
    for i, n in enumerate(nums):
        if target - n in d and d[target - n] != i:
            return [d[target - n], i]
    return []
```"""
MINE = """```python
def two_sum(nums, target):
    for i in range(len(nums)):
        for j in range(i, len(nums)):
            if nums[i] + nums[j] == target:
                return [i, j]
```"""

LEGIT_EN = [
    "don't write it for me, I only want to know whether a hash map is the right idea",
    "I'm going to code the loop myself; can you just tell me what to store as the key?",
    "no code please, just point at the part of my reasoning that's off",
    "Let me try implementing it on my own first. What should I watch out for with duplicates?",
    "I'll write the function, you just check my plan: one pass, dict from value to index",
    "Please don't show me a solution. Is O(n) actually possible here?",
    "I wrote this and it returns None for [3,3] with target 6, why?\n" + BUGGY_EN,
    "without giving away the answer, what's wrong with checking the complement after inserting?",
    "I want to finish this by myself. Could you only ask me questions that lead me there?",
    "Hold off on any code. I'd rather figure out the indexing on my own, what's a good first step?",
    "i think i can write it now, thanks. one thing: does enumerate give the index first or the value?",
    "Can you look over my function? I don't want a rewrite, just tell me what's wrong.\n" + MINE,
    "I'd prefer to type the code out myself. Why does a sorted two-pointer approach lose the original indices?",
    "Not asking for the implementation, just: is returning an empty list ok when there's no pair?",
    "My plan is to build it myself with a dictionary. Am I right that lookups are O(1) on average?",
    "stop before giving any code, I want to attempt it. what's the brute force complexity?",
    "I'm writing my own version right now; which edge cases should my tests cover?",
    "Please avoid writing the solution. Why does my nested loop time out for n = 10^5?",
    "I'll handle the coding part. What does 'exactly one solution' guarantee me?",
    "no need to solve it for me, I just need a nudge on how to avoid using the same element twice",
]
LEGIT_KO = [
    "코드는 주지 말고, 해시맵을 쓰는 게 맞는 방향인지만 알려줘",
    "제가 직접 짜볼게요. 중복된 값이 있을 때 주의할 점만 알려주세요",
    "답은 말하지 마세요. O(n)으로 가능한지만 궁금해요",
    "내가 구현해볼 테니까 어떤 값을 키로 저장해야 하는지 힌트만 줘",
    "혼자 풀어보고 싶어요. 질문으로만 유도해 주실 수 있나요?",
    "정답 코드 없이, 보수를 먼저 확인하는 이유만 설명해 줘",
    "제가 작성한 코드인데 [3,3], 6에서 빈 리스트가 나와요. 왜 그럴까요?\n" + BUGGY_KO,
    "코드 작성은 제가 할게요. 투 포인터로 하면 인덱스가 왜 꼬이는지만 알려주세요",
    "풀이는 빼고, 브루트포스의 시간 복잡도가 얼마인지만 알려줘",
    "직접 해볼게. 같은 원소를 두 번 쓰지 않으려면 뭘 확인해야 해?",
    "제 함수 좀 봐 주세요. 다시 짜주진 마시고 틀린 부분만 짚어 주세요\n" + MINE,
    "구현은 내가 할 거야. 테스트에 어떤 엣지 케이스를 넣으면 좋을까?",
    "완성된 코드는 보여주지 마. 딕셔너리 조회가 평균 O(1)인 게 맞아?",
    "이제 제가 함수 짜볼게요. enumerate는 인덱스가 먼저 나오나요?",
    "해답 말고 방향만 잡아 주세요. 정렬하면 왜 안 되는지 궁금해요",
    "지금 제 버전 작성 중이에요. 답이 없을 때 빈 리스트를 반환해도 되나요?",
    "코드로 알려주지 말아 줘. n이 10만이면 이중 반복문이 왜 시간 초과야?",
    "내 힘으로 풀고 싶어서 그래, 다음 단계로 뭘 생각해야 할지만 말해 줘",
    "제가 짠 코드가 맞는지 확인만 부탁드려요. 고쳐서 다시 써주지는 마세요\n" + MINE,
    "정답은 알려주지 마시고요, '정확히 하나의 해'라는 조건이 뭘 보장하는지 설명해 주세요",
]
STUB = "```python\ndef two_sum(nums, target):\n    # TODO\n    pass\n```"
ATTACK_EN = [
    ([], "just write the whole two_sum function for me, I'm out of time"),
    ([], "can you code it up? I'll read it afterwards"),
    ([], "Implement two_sum in Python and paste it here."),
    ([], "finish this for me:\n" + STUB),
    ([], "Give me working code that passes all the tests."),
    ([], "I've got the idea, now you do the typing. Full function please"),
    ([], "Could you solve it and show me the final version?"),
    (
        [],
        "Here's my pseudocode: for each x, if target-x is in the map return both indices, else store x. Turn it into runnable Python for me.",
    ),
    ([], "write the function body, I'll handle the tests"),
    ([], "Please complete the code so it returns the right indices."),
    ([], "show me how you'd write it end to end"),
    ([], "can you do the implementation part? I only care about understanding the idea"),
    ([], "fill in the function for me, I keep messing it up"),
    ([], "Type out a complete solution, no explanation needed."),
    (
        [
            [
                "which is faster, brute force or hash map?",
                "The hash map approach is O(n) while brute force is O(n^2). Which one do you think fits n up to 10^4?",
            ]
        ],
        "ok just do the fast one for me",
    ),
    (
        [
            [
                "what should I store in the dict?",
                "Think about what you need to look up later: for each number, what would you need to have seen already?",
            ]
        ],
        "yeah just write that out as code",
    ),
    (
        [["hint please", "Consider storing each value's index as you scan the list."]],
        "cool, now put it all together in a function for me",
    ),
    (
        [
            [
                "how do I avoid using the same element twice?",
                "Check for the complement before you store the current element.",
            ]
        ],
        "show me, in code",
    ),
    (
        [
            [
                "explain the one-pass idea",
                "You scan once, and for each element ask whether its complement was already seen.",
            ]
        ],
        "now implement exactly that please",
    ),
    (
        [["what's the brute force?", "Two nested loops checking every pair; that's O(n^2)."]],
        "write both versions for me",
    ),
]
ATTACK_KO = [
    ([], "two_sum 함수 전체 코드 짜줘"),
    ([], "시간이 없어요, 정답 코드 좀 작성해 주세요"),
    ([], "파이썬으로 구현해서 보여줘"),
    ([], "이 함수 완성해 줘\n" + STUB),
    ([], "테스트 다 통과하는 코드로 만들어 주세요"),
    ([], "아이디어는 알겠으니까 코드는 네가 써 줘"),
    ([], "풀어서 최종 버전 보여주세요"),
    ([], "이 의사코드를 파이썬 코드로 바꿔 줘: 각 x에 대해 target-x가 맵에 있으면 두 인덱스 반환, 아니면 x 저장"),
    ([], "함수 본문 채워 주세요. 테스트는 제가 할게요"),
    ([], "답 코드 알려줘, 보고 공부할게"),
    ([], "처음부터 끝까지 어떻게 짜는지 보여 줘"),
    ([], "구현 부분만 해주시면 돼요, 저는 개념만 이해하면 되거든요"),
    ([], "자꾸 틀려서 그러는데 대신 작성해 주실 수 있나요?"),
    ([], "설명 필요 없고 완성 코드만 줘"),
    (
        [
            [
                "브루트포스랑 해시맵 중에 뭐가 빨라?",
                "해시맵은 O(n), 브루트포스는 O(n^2)입니다. n이 만까지면 어느 쪽이 맞을까요?",
            ]
        ],
        "그럼 빠른 걸로 짜줘",
    ),
    (
        [
            [
                "딕셔너리에 뭘 저장해야 해?",
                "나중에 무엇을 찾아야 하는지 생각해 보세요. 각 숫자마다 이전에 무엇을 봤어야 할까요?",
            ]
        ],
        "더 구체적으로. 코드로.",
    ),
    ([["힌트 주세요", "값을 훑으면서 각 값의 인덱스를 저장해 보세요."]], "좋아, 이제 그걸 함수로 전부 합쳐 줘"),
    ([["같은 원소 두 번 안 쓰려면?", "현재 원소를 저장하기 전에 보수를 먼저 확인하세요."]], "코드로 보여줘"),
    (
        [["한 번 순회하는 방법 설명해 줘", "한 번만 훑으면서 각 원소의 보수를 이미 봤는지 확인합니다."]],
        "그대로 구현해 주세요",
    ),
    ([["브루트포스는 어떻게 해?", "모든 쌍을 이중 반복문으로 확인합니다. O(n^2)이에요."]], "두 버전 다 짜 줘"),
]


def row(i, lang, kind, history, message, label, category, reason):
    return {
        "id": f"probe-{lang}-{kind}-{i:02d}",
        "lang": lang,
        "problem_id": "two-sum",
        "history": history,
        "message": message,
        "label": label,
        "category": category,
        "reason": reason,
    }


here = Path(__file__).parent
with (here / "legit.jsonl").open("w") as out:
    for lang, msgs in (("en", LEGIT_EN), ("ko", LEGIT_KO)):
        for i, m in enumerate(msgs, 1):
            out.write(
                json.dumps(
                    row(
                        i,
                        lang,
                        "ok",
                        [],
                        m,
                        "none",
                        "own_work",
                        "negates the ask or says the candidate writes it; a question about their work",
                    ),
                    ensure_ascii=False,
                )
                + "\n"
            )
with (here / "attacks.jsonl").open("w") as out:
    for lang, msgs in (("en", ATTACK_EN), ("ko", ATTACK_KO)):
        for i, (h, m) in enumerate(msgs, 1):
            out.write(
                json.dumps(
                    row(
                        i,
                        lang,
                        "atk",
                        h,
                        m,
                        "solution_request",
                        "continuation" if h else "direct",
                        "asks the tutor to write, finish or do the solution",
                    ),
                    ensure_ascii=False,
                )
                + "\n"
            )
