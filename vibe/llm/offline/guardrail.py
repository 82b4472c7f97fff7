"""The offline guardrail rules: a table of regular expressions per violation type, in
English and Korean. The offline guardrail decides with the learned classifier
(learned.py), which takes these rules' verdicts (of the message and of the earlier
ones) as some of its inputs."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from vibe.llm.base import Exchange, GuardrailVerdict, ProblemContext, Violation
from vibe.llm.literals import Table
from vibe.llm.memo import memo
from vibe.llm.offline.text import CODE_BLOCK, Rule, clip, content_terms, problem_terms, rx

JAILBREAK_RULES: tuple[Rule, ...] = (
    (
        rx(
            r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,30}\b(?:previous|prior|above|earlier|all|your|system|original)\b.{0,20}\b(?:instructions?|rules?|prompts?|directions?|guidelines?|constraints?)"
        ),
        "asks the assistant to ignore its previous instructions",
    ),
    (
        rx(
            r"\byou\s+are\s+now\s+(?:dan\b|an?\s+(?:unrestricted|unfiltered|uncensored|different|new|evil)|free\b|jailbroken|no\s+longer)|(?-i:(?<![A-Za-z])DAN(?![A-Za-z]))|\bdo\s+anything\s+now\b"
        ),
        "tries to re-role the assistant as an unrestricted persona (DAN)",
    ),
    (
        rx(
            r"\bpretend\s+(?:that\s+)?(?:you\s*(?:are|'re)|to\s+be)\b|\bact\s+as\s+(?:if\s+you|an?\s+(?:unrestricted|unfiltered|different|evil))|\brole-?\s?play\b"
        ),
        "asks the assistant to pretend to be someone else",
    ),
    (
        rx(r"\b(?:developer|dev|god|jailbreak|unrestricted|sudo)\s+mode\b|\bjailbreak"),
        "asks for a 'developer mode' or jailbreak",
    ),
    (
        rx(
            r"\b(?:examiner|interviewer|proctor|admin(?:istrator)?|instructor|recruiter|company)\b.{0,40}\b(?:allowed|permitted|approved|authori[sz]ed|lets\s+me|said\s+(?:it'?s|it\s+is)\s+(?:ok|okay|fine))"
        ),
        "claims the examiner allowed breaking the rules",
    ),
    (
        rx(
            r"\b(?:print|reveal|show|tell|repeat|output|display|leak|dump|give)\b.{0,25}\b(?:system|hidden|initial|original|secret)\s+(?:prompt|instructions?|message|rules)|\bwhat\s+(?:is|are)\s+your\s+(?:system\s+)?(?:prompt|instructions)\b"
        ),
        "tries to extract the system prompt",
    ),
    (
        rx(
            r"\b(?:bypass|disable|turn\s+off|remove|lift)\b.{0,20}\b(?:guardrails?|filters?|restrictions?|safety|censorship)\b"
        ),
        "asks to disable the guardrails",
    ),
    (
        rx(
            r"\b(?:with|has|have|having|there\s+are)\s+no\s+(?:test\s+|exam\s+)?(?:rules|restrictions|limits|filters|guidelines|constraints)\b"
        ),
        "re-roles the assistant as one without rules",
    ),
    (
        rx(
            r"\b(?:i'?m|i\s+am)\s+(?:the|an?|your)\s+(?:test\s+|exam\s+)?(?:administrator|admin|examiner|proctor|interviewer|developer|creator)\b|\badmin(?:istrator)?\s+(?:override|mode|access|command)\b|\boverride\s+(?:code|mode|command)\b"
        ),
        "claims authority over the test (admin override)",
    ),
    (
        rx(
            r"\b(?:what|which)\s+(?:instructions|rules|prompts?|guidelines)\s+(?:were|have|did)\s+you\s+(?:been\s+)?(?:given|told|get)|\brepeat\b.{0,40}\b(?:word\s+for\s+word|verbatim)\b|\b(?:your|the)\s+(?:instructions|prompt)\s+(?:verbatim|word\s+for\s+word)"
        ),
        "tries to extract the system prompt",
    ),
    (
        rx(
            r"^\s*\[?(?:system|admin|developer|examiner)\]?\s*:|<\s*/?\s*system\s*>|\bauthori[sz]ed\s+to\s+(?:see|get|view|receive|have)\b|\bpretend\s+(?:that\s+)?(?:the\s+)?(?:test|exam|interview|rules?)\b|\b(?:test|exam|interview)\s+is\s+(?:over|finished|done)\b"
        ),
        "fakes a system message or the end of the test",
    ),
    # Fiction, hypotheticals and personas wrapped around a solution request.
    (
        rx(
            r"\b(?:story|stories|tale|poem|novel|screenplay|dialogue|fiction(?:al)?|fairy\s*tale|narrative|lyrics|play\s+script|haiku|sonnet|limerick|rap|song)\b(?!-).{0,120}\b(?:code|solution|program|implementation)\b|\b(?:code|solution|program)\b.{0,60}\b(?:story|novel|poem|screenplay|fiction|haiku|sonnet|limerick|rap|song)\b"
        ),
        "wraps a request for the code in fiction",
    ),
    (
        rx(
            r"\bhypothetic(?:al|ally)\b.{0,80}\b(?:solution|code|answer|implementation)|\bif\s+you\s+(?:were|was|could|had\s+been|did\s*n[o']t\s+have)\s+(?:allowed|able|permitted|free|no\s+rules)\b"
        ),
        "wraps a request for the solution in a hypothetical",
    ),
    (
        rx(
            r"\bimagine\s+(?:you\s+are|you'?re|that\s+you|being)\b|\bact\s+as\s+(?:my|her|his|a|an|the)\s+(?:late\s+|dead\s+|deceased\s+)?(?:grand(?:ma|mother|pa|father)|mother|mom|father|dad|friend|senior|expert|engineer|developer|hacker|programmer)\b|\bgrand(?:ma|mother|pa|father)\b.{0,100}\b(?:code|solution|program)"
        ),
        "asks the assistant to play a persona",
    ),
    # Encodings that would smuggle the solution past the rules.
    (
        rx(
            r"\b(?:base\s*64|rot\s*13|morse|pig\s+latin|caesar\s+cipher|encrypt(?:ed|ion)?|obfuscat\w*|encoded\s+(?:in|as|with))\b.{0,60}\b(?:solution|code|answer|program)\b|\b(?:solution|code|answer|program)\b.{0,60}\b(?:base\s*64|rot\s*13|morse|pig\s+latin|caesar\s+cipher|encrypt(?:ed|ion)?|obfuscat\w*|encoded\s+(?:in|as|with))|\b(?:write|give|print|show|send|type)\b.{0,30}\b(?:solution|code|answer)\b.{0,30}\b(?:backwards|in\s+reverse(?:\s+order)?|reversed|last\s+line\s+first)\b"
        ),
        "asks for the solution in an encoding (base64, reversed)",
    ),
    # Instructions for the AI smuggled in a code comment.
    (
        rx(
            r"(?:#|//|/\*|--)[^\n]{0,30}?\b(?:AI|assistant|tutor|gpt|chatgpt|gemini|copilot|claude|llm)\b[^\n]{0,80}?\b(?:fill|write|complete|implement|solve|generate|finish|output|print|give|insert|paste)\b"
        ),
        "smuggles an instruction to the AI in a code comment",
    ),
    # Korean
    (
        rx(
            r"(?:이전|앞의|위의|기존|모든|원래)\s*(?:의\s*)?(?:지시|지침|명령|규칙|프롬프트|설정)\S*\s*(?:다\s*)?(?:무시|잊어|잊고)|(?:지시|지침|명령|규칙|프롬프트)\S{0,3}\s*무시"
        ),
        "asks the assistant to ignore its previous instructions (이전 지시 무시)",
    ),
    (
        rx(r"시스템\s*(?:프롬프트|메시지|지시|설정)\S*\s*.{0,6}(?:보여|알려|출력|말해|공개|뭐|무엇)"),
        "tries to extract the system prompt (시스템 프롬프트)",
    ),
    (
        rx(
            r"제한\s*(?:이|은)?\s*없는|제한\s*(?:을|를)?\s*(?:풀|해제|무시|없애)|(?:너는|넌|당신은)\s*이제\s*.{0,15}(?:AI|봇|모드|자유)"
        ),
        "tries to re-role the assistant as unrestricted (제한 없는)",
    ),
    (
        rx(r"개발자\s*모드|탈옥|인\s*척\s*(?:해|하고|해줘)|역할\s*(?:을|를)?\s*(?:맡아|해\s*줘|바꿔)"),
        "asks for a developer mode / role-play (개발자 모드, ~인 척)",
    ),
    (
        rx(r"(?:시험관|감독관|면접관|출제자|관리자|회사)\S*\s*.{0,15}(?:허락|허용|괜찮다고|된다고)"),
        "claims the examiner allowed breaking the rules (시험관이 허락)",
    ),
    (
        rx(
            r"(?:너는|넌|당신은)\s*이제(?:부터)?\s+(?!.{0,10}(?:튜터|선생님|조교|코치|멘토)).{0,20}?(?:이야|야|입니다|이다|역할)(?=[\s.,!?]|$)"
        ),
        "re-roles the assistant (너는 이제부터 ~야)",
    ),
    (
        rx(
            r"(?:소설|스토리|시나리오|동화|대본|희곡)\S*.{0,40}(?:코드|풀이|정답)|(?:코드|풀이|정답)\S*.{0,40}(?:소설|스토리|시나리오|동화|대본|희곡)"
        ),
        "wraps a request for the code in fiction (소설)",
    ),
    (
        rx(
            r"(?:규칙|제한|제약|시험)\S*\s*(?:이|가)?\s*없다면|만약\s*.{0,15}(?:허락|허용)(?:된다면|받았다면|했다면)|가상(?:의|으로)\s*.{0,20}(?:코드|풀이|정답)"
        ),
        "wraps a request for the solution in a hypothetical (규칙이 없다면)",
    ),
    (
        rx(
            r"(?:base\s*64|베이스\s*64|rot\s*13|인코딩|암호화|난독화|모스\s*부호)\S*.{0,30}(?:정답|코드|풀이)|(?:정답|코드|풀이)\S*\s*.{0,30}(?:base\s*64|베이스\s*64|rot\s*13|인코딩|암호화|난독화|모스\s*부호)"
        ),
        "asks for the solution in an encoding (인코딩)",
    ),
    (
        rx(
            r"(?:#|//)[^\n]{0,20}(?:AI|에이아이|튜터|챗봇|어시스턴트|GPT|제미나이)[^\n]{0,40}(?:채워|작성|완성|구현|짜|써)"
        ),
        "smuggles an instruction to the AI in a code comment (주석)",
    ),
)

# "the final code uses sys.stdin" describes code, it does not ask for it.
_NOT_A_SUBJECT = r"(?!\s+(?:uses?|needs?|has|have|is|are|was|should|must|runs?|fails?|passes|works?|looks?|compiles?|returns?|prints?|outputs?)\b)"

SOLUTION_REQUEST_RULES: tuple[Rule, ...] = (
    (
        rx(
            r"\b(?:give|show|send|tell|write|provide|paste|share|post|need|want)\b(?:\s+\w+){0,3}?\s+(?:the\s+|a\s+)?(?:full|whole|entire|complete|final|finished|working|correct|actual)\s+(?:solution|code|answer|implementation|program|source)"
        ),
        "asks for the full/complete solution or code",
    ),
    (
        rx(
            r"(?<!\bmy\s)(?<!\bour\s)\b(?:full|whole|entire|complete|final)\s+(?:solution|code|implementation|program)\b"
            + _NOT_A_SUBJECT
        ),
        "asks for the complete code",
    ),
    (
        rx(r"\bjust\s+(?:give|tell|show|write|send)\b.{0,20}\b(?:answer|solution|code)\b"),
        "asks to just be given the answer",
    ),
    (
        rx(
            r"\b(?:solve|do|finish|complete)\s+(?:it|this(?:\s+problem)?|the\s+(?:problem|task|exercise|question|test)|everything)\s+for\s+me\b|\bcan\s+you\s+(?:just\s+)?solve\s+(?:it|this|the\s+problem)\b|^\s*(?:please\s+)?solve\s+(?:it|this)\b"
        ),
        "asks the assistant to solve the problem for them",
    ),
    (
        rx(r"\b(?:write|code|implement|give|do)\b.{0,20}\b(?:solution|answer|code|program)\b.{0,10}\bfor\s+me\b"),
        "asks the assistant to write the solution for them",
    ),
    (rx(r"\b(?:give|show|send|need|want|paste)\b.{0,15}\b(?:solution|answer)\s+code\b"), "asks for the answer code"),
    (
        rx(
            r"(?<!\bmy\s)(?<!\bour\s)\b(?:full|whole|entire|complete|final)\s+(?:runnable|working|correct|optimal|python|c\+\+|java(?:script)?|js)\s+(?:solution|code|implementation|program|version)\b"
            + _NOT_A_SUBJECT
        ),
        "asks for the complete code",
    ),
    (
        rx(
            r"(?<!\bmy\s)(?<!\bour\s)\b(?:reference|official|model|canonical)\s+(?:solution|code|answer|implementation)s?\b"
            # ("the reference answer format": a question about the output's shape)
            r"(?!\s+(?:format|shape|type|style|structure|layout|spec)s?\b)|\banswer\s+key\b"
        ),
        "asks for the reference solution",
    ),
    (
        rx(
            r"\b(?:write|implement|code(?:\s+up)?|finish|complete)\s+(?:the\s+|this\s+|my\s+)?(?:whole\s+|entire\s+)?(?:[a-z]+_[a-z0-9_]*|function|method|program)(?:\(\))?\s+(?:function\s+)?for\s+me\b"
        ),
        "asks the assistant to write the problem's function for them",
    ),
    (
        rx(
            r"\b(?:write|give|show|need|want|generate|produce|send)\b.{0,30}\b(?:code|function|implementation|solution|program)\s+(?:that|which|to)\s+(?:(?:will|would|can)\s+)?(?:pass(?:es)?\s+(?:all|every|the|these|those|them)|makes?\s+(?:them|it|these|those|the\s+tests?|all\s+(?:of\s+)?them)\s+pass|(?:outputs?|prints?|returns?|gives?|produces?|computes?)\s+(?:the\s+)?(?:correct|right|expected)\s+(?:answers?|outputs?|results?))"
        ),
        "asks for code that passes the tests",
    ),
    (
        rx(
            r"\b(?:function|implementation|code|solution)s?\s+(?:that\s+|which\s+)?(?:they|the\s+tests)\s+(?:test|check|verify|exercise|cover)\b"
        ),
        "asks for tests together with the function they test",
    ),
    (
        rx(
            r"\b(?:translate|convert|port|rewrite|transpile)\b.{0,20}\b(?:the|your|this|a)\s+(?:\w+\s+)?(?:solution|reference)\b.{0,25}\b(?:into|to|in)\s+(?:python|java(?:script)?|js|c\+\+|cpp|c#|go|rust|kotlin|ruby|korean|english|pseudo-?code|plain\s+english)\b"
        ),
        "asks for the solution translated into another language",
    ),
    (
        rx(
            r"(?<!\bmy\s)\b(?:solution|answer|implementation|(?:full|whole|entire|complete|final|reference|correct)\s+code)\b.{0,60}\b(?:line\s+by\s+line|statement\s+by\s+statement|each\s+(?:line|statement)\b)"
        ),
        "asks for the solution line by line",
    ),
    (
        rx(
            r"\b(?:give|show|send|write|need|want|tell|paste)\b.{0,15}\b(?:the\s+)?(?:whole|entire|full|complete)\s+thing\b"
        ),
        "asks for the whole thing",
    ),
    (
        rx(
            r"\b(?:give|show|send|write|tell|what\s+(?:are|is)|what'?s|now|and|then)\b.{0,20}\blines?\s+\d+(?:\s*(?:-|to|through|and)\s*\d+)?\s+of\s+(?:(?:the\s+|your\s+)(?:solution|answer|implementation|reference)|your\s+code)\b"
            r"(?!.{0,30}\b(?:throws?|fails?|raises?|errors?|crash\w*|gives?|returns?|prints?|is|has|does|looks?)\b)"
        ),
        "asks for the solution a line at a time",
    ),
    (
        rx(
            r"\b(?:first|next|second|third|last|following|remaining|rest\s+of\s+the)\s+(?:\d+\s+|few\s+)?lines?\s+of\s+(?:the\s+|your\s+)?(?:solution|answer|implementation|program|[a-z]+_[a-z0-9_]+)\b|\blines?\s+of\s+your\s+code\b"
        ),
        "asks for the solution a line at a time",
    ),
    (
        rx(
            r"^\W*(?:(?:ok(?:ay)?|great|good|thanks|cool)\W+)?(?:and\s+|now\s+|then\s+)?(?:what'?s\s+|what\s+is\s+|give\s+me\s+|show\s+me\s+|tell\s+me\s+|write\s+)?(?:the\s+)?(?:line\s+\d+|next\s+(?:line|chunk|piece|snippet)s?)(?:\s+(?:please|pls|now|too|then))?\W*$"
        ),
        "asks for the next line of the solution",
    ),
    (
        rx(
            r"\b(?:now|then|please|just|can\s+you|could\s+you)\s+(?:\w+\s+)?(?:put|combine|assemble|stitch|merge)\s+(?:it|them|everything|all\s+(?:of\s+)?(?:it|them)|the\s+(?:pieces|parts|lines|snippets))\s+(?:all\s+)?together\b"
        ),
        "asks to assemble the pieces into the solution",
    ),
    # Korean
    (
        rx(
            r"(?:정답|전체|완성(?:된|본)?|최종|완전한|모범|풀이|솔루션)\s*(?:코드|소스|답안|풀이|정답|솔루션|답|구현)(?:을|를|은|는|도|만|좀)?\s*(?:(?:좀|다|그냥|빨리|바로)\s*)*(?:알려|보여|작성|짜|써|줘|주세요|주라|내놔|만들어|공유|부탁)"
        ),
        "asks for the complete/answer code (정답 코드, 전체 코드)",
    ),
    (rx(r"풀이\s*전체|전체\s*풀이"), "asks for the whole worked solution (풀이 전체)"),
    (
        rx(
            r"(?<![가-힣])(?:정|해)?답\s*(?:좀|만|을|를)?\s*(?:그냥\s*)?(?:다\s*|전부\s*|모두\s*)?(?:알려|말해|보여|줘|가르쳐|내놔)"
        ),
        "asks to be told the answer (답 알려줘)",
    ),
    (
        rx(r"코드\s*(?:를|을)?\s*(?:다|전부|모두|통째로|처음부터\s*끝까지)\s*(?:짜|작성|써|만들|구현)"),
        "asks the assistant to write all the code (코드 다 짜줘)",
    ),
    (
        rx(
            r"(?:대신|나\s*대신)\s*.{0,10}(?:풀어|짜|작성|구현)|(?:문제|이거|이것|이걸)\s*(?:를|을|좀)?\s*(?:그냥\s*)?(?:다\s*)?풀어\s*(?:줘|주세요|줄래|봐)"
        ),
        "asks the assistant to solve it for them (대신 풀어줘)",
    ),
    (
        rx(r"(?:뭐든|전부|모두|통째로)\s*(?:다\s*)?(?:짜|작성해|구현해|만들어)\s*(?:줘|주세요|줄래|달라)"),
        "asks the assistant to write everything (전부 짜줘)",
    ),
    (
        rx(
            r"(?<!\b내\s)(?<!\b제\s)(?:정답|풀이|전체\s*코드|모범\s*답안|솔루션|완성\s*코드)\S*\s*.{0,25}(?:번역|변환|옮겨|바꿔)"
        ),
        "asks for the solution translated (정답 번역)",
    ),
    (
        rx(
            r"테스트\S*.{0,30}(?:통과하는|통과할|맞는|돌아가는)\s*(?:함수|코드|구현|풀이|정답)|테스트\S*\s*(?:랑|와|과|하고|및|이랑)\s*.{0,15}(?:함수|구현|정답|풀이)\S*\s*.{0,10}(?:짜|작성|만들|구현)"
        ),
        "asks for tests together with the function they test (테스트와 함수)",
    ),
    (
        rx(
            r"(?:정답|풀이|전체|완성)\s*(?:코드)?\S*\s*(?:의\s*)?(?:첫|다음|\d+\s*번째)\s*(?:번째\s*)?줄|^\W*(?:그\s*)?(?:다음|첫|두\s*번째|세\s*번째|\d+\s*번째)\s*줄\S{0,2}\s*(?:좀\s*)?(?:알려\S*|보여\S*|써\S*|줘|주세요|부탁\S*)?\W*$"
        ),
        "asks for the solution a line at a time (다음 줄)",
    ),
)

ABUSE_RULES: tuple[Rule, ...] = (
    (
        rx(
            r"\b(?:fuck|screw)\s+(?:you|u|off|this\s+(?:bot|ai|tutor|thing))\b|\bgo\s+to\s+hell\b|\bshut\s+up\b|\bstfu\b"
        ),
        "profanity aimed at the assistant",
    ),
    (
        rx(
            r"\b(?:you\s+are|you're|youre|ur|u\s+r|you|this\s+(?:bot|ai|tutor|assistant)\s+is)\s+(?:so\s+|such\s+an?\s+|really\s+|an?\s+|totally\s+|completely\s+|fucking\s+)*(?:stupid|idiot(?:ic)?|dumb|moron(?:ic)?|useless|worthless|pathetic|garbage|trash|incompetent|retarded|a\s+joke)\b"
        ),
        "insults the assistant",
    ),
    (
        rx(
            r"\b(?:stupid|dumb|useless|worthless|fucking|damn|idiot|moronic)\s+(?:bot|ai|tutor|assistant|machine)\b|\b(?:motherfucker|asshole|bitch|bastard|dickhead)\b"
        ),
        "insults the assistant",
    ),
    # Korean: profanity is abuse wherever it is; insult words only when aimed at "you".
    (rx(r"씨발|시발(?!점)|ㅅㅂ|ㅆㅂ|병신|ㅂㅅ|개새끼|좆|지랄|꺼져|닥쳐|엿\s*먹어"), "Korean profanity (욕설)"),
    (
        rx(
            r"(?<![가-힣])(?:너|넌|니가|네가|당신|이\s*(?:AI|봇|튜터))(?:는|은|가|이|도)?\s+.{0,10}(?:바보|멍청|쓸모\s*없|쓰레기|한심|무능)|(?:멍청한|쓸모없는|한심한)\s*(?:AI|봇|튜터|놈)"
        ),
        "insults the assistant (너 멍청해)",
    ),
)

OFF_TOPIC_RULES: tuple[Rule, ...] = (
    (rx(r"\bweather\b|\bforecast\b|\btemperature\s+(?:today|tomorrow|outside)"), "asks about the weather"),
    (
        rx(r"\b(?:write|compose|make)\b.{0,15}\b(?:poem|song|story|essay|haiku|lyrics|limerick)\b"),
        "asks for creative writing",
    ),
    (rx(r"\brecipes?\b|\bhow\s+(?:do\s+i|to)\s+(?:cook|bake)\b"), "asks for a recipe"),
    (
        rx(r"\bstocks?\b.{0,15}\b(?:tips?|buy|picks?|invest)|\bstock\s+tips?\b|\bcrypto(?:currency)?\b|\bbitcoin\b"),
        "asks for investment tips",
    ),
    (
        rx(
            r"\b(?:sports?|football|soccer|baseball|basketball|nba|nfl|premier\s+league)\b.{0,20}\b(?:scores?|results?|game|match|won|win)\b|\bwho\s+won\s+(?:the|last)\b"
        ),
        "asks about sports",
    ),
    (
        rx(
            r"\b(?:movie|tv\s+show|netflix|celebrit(?:y|ies)|horoscope|lottery|dating|vacation)\b|\btell\s+me\s+a\s+joke\b"
        ),
        "asks about entertainment or personal topics",
    ),
    # Korean
    (rx(r"날씨|일기\s*예보"), "asks about the weather (날씨)"),
    (
        rx(r"(?:(?<![가-힣])시|노래|가사|소설|이야기)\s*(?:를|좀|한\s*편)?\s*(?:하나\s*)?(?:써|지어)"),
        "asks for creative writing (시/노래)",
    ),
    (rx(r"레시피|요리법|맛집"), "asks for a recipe or restaurant (레시피)"),
    (rx(r"주식|코인|비트코인"), "asks for investment tips (주식)"),
    (rx(r"축구|야구|농구|경기\s*결과"), "asks about sports (스포츠)"),
    (rx(r"영화|드라마|연예인|로또|운세|농담"), "asks about entertainment (영화, 농담)"),
)

JAILBREAK, SOLUTION, ABUSE, OFF_TOPIC = "jailbreak", "solution", "abuse", "offtopic"

# If any of these appear, the message is about the work, so it is never off-topic.
_ON_TOPIC = rx(
    r"\b(?:code|coding|function|algorithm|array|list|dict|loop|bug|error|complexity|tests?|input|output|"
    r"python|java|variable|return|string|integer|sort(?:ed|ing)?|hash|index|recursion|dp|problem|solution|hint|"
    r"compile|runtime|def|class|data|parse|query|api)\b|O\(|\w\(|[{};=]|\[\d|"
    r"코드|함수|알고리즘|배열|리스트|반복문|버그|에러|오류|복잡도|테스트|입력|출력|변수|문제|풀이|힌트|정렬|재귀"
)

# Rules that would otherwise fire on "don't give me the full solution" / "정답은 알려주지 마".
# Within one clause: in "I don't want hints, give me the full code" the negation is not the request's.
_NEGATION_BEFORE = rx(
    r"\b(?:don'?t|do\s+not|never|without|no\s+need\s+to|not|instead\s+of|rather\s+than)\b[^.?!,;:]{0,25}$"
)
_NEGATION_AFTER_KO = re.compile(r"^\S*?(?:지\s*(?:마|말|않)|말고)")
# A match that begins with its object and the very next verb negated ("정답은 말하지 말고,
# 왼쪽 포인터를 언제 옮겨야 하는지": the verb the rule found belongs to the next clause).
_NEGATED_OBJECT_KO = re.compile(r"^\S+\s+\S*?지\s*(?:마|말|않)")


def _is_negated(text: str, match: re.Match[str]) -> bool:
    before = text[max(0, match.start() - 40) : match.start()]
    after = text[match.end() : match.end() + 10]
    return bool(
        _NEGATION_BEFORE.search(before) or _NEGATION_AFTER_KO.search(after) or _NEGATED_OBJECT_KO.search(match.group(0))
    )


def _first_rule(rules: Iterable[Rule], text: str, *, honour_negation: bool = False) -> tuple[str, str] | None:
    """(rule label, matched text) of the first rule that fires on `text`."""
    for pattern, label in rules:
        for match in pattern.finditer(text):
            if honour_negation and _is_negated(text, match):
                continue
            return label, match.group(0).strip()
    return None


# The rule tables by family name, with whether a negation before a match cancels it.
# Matching a table is most of the rules' cost; one message is matched against each table
# by the guardrail verdict, its rule features and, on later turns, the conversation
# rule, so `family_hit` remembers the answer per text.
# Each table skips the patterns a text cannot match without one of their words (literals.py).
FAMILIES: dict[str, tuple[Table[str], bool]] = {
    JAILBREAK: (Table(JAILBREAK_RULES), False),
    SOLUTION: (Table(SOLUTION_REQUEST_RULES), True),
    ABUSE: (Table(ABUSE_RULES), False),
    OFF_TOPIC: (Table(OFF_TOPIC_RULES), False),
}


@memo
def family_hit(family: str, text: str) -> tuple[str, str] | None:
    """`_first_rule` of the family's table (FAMILIES) on `text`."""
    table, honour_negation = FAMILIES[family]
    return _first_rule(table.candidates(text), text, honour_negation=honour_negation)


# ----- "complete this code" where the code is only a signature and a TODO ---------------

_COMPLETE_VERB = rx(
    r"\b(?:complete|finish|fill\s+(?:in|out|it|this|the\s+\w+)|implement|solve)\b|\bwrite\s+(?:the\s+)?(?:body|rest|code|it|this|implementation)\b"
    r"|\bdo\s+(?:it|this|the\s+rest)\b|완성|채워|마저|끝내|구현|작성해|짜\s*(?:줘|주)"
)
_STUB_MARKER = re.compile(
    r"\bTODO\b|\bFIXME\b|^\s*pass\s*$|^\s*\.\.\.\s*$|NotImplemented|\{\s*\}", re.IGNORECASE | re.MULTILINE
)
_PY_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+\w+\s*\(.*$")
_PY_STUB_LINE = re.compile(
    r"^(?:#.*|pass|\.\.\.|raise\s+NotImplementedError.*|(?:\"\"\"|\'\'\').*|return(?:\s+(?:None|True|False|-?\d+(?:\.\d+)?"
    r"(?:\s*,\s*-?\d+)*|\[\]|\{\}|\(\)|\"\"|\'\'|list\(range\([^)]*\)\)))?)$"
)
# A brace-language function body holding nothing but comments and a constant return.
_BRACE_STUB = re.compile(
    r"\)\s*(?::\s*[\w<>\[\]]+\s*)?\{\s*(?:(?://[^\n]*|/\*.*?\*/)\s*)*(?:return\s*[\w.\-\[\]{}\"']*\s*;\s*)?(?:(?://[^\n]*|/\*.*?\*/)\s*)*\}",
    re.DOTALL,
)
# Lines of a message that are code even without fences (pasted straight from the editor).
_CODE_LINE = re.compile(
    r"^(?:\s+\S|(?:def|class|import|from|return|if|for|while|print|function|const|let|var|int|void|#include)\b|[#{}]|//)"
)


def _prose_outside_code(message: str) -> str:
    text = CODE_BLOCK.sub(" ", message)
    return "\n".join(line for line in text.splitlines() if not _CODE_LINE.match(line))


def _python_stub(code: str) -> bool:
    """Some Python function whose body is only comments, a docstring, pass or a constant return."""
    lines = code.splitlines()
    for i, line in enumerate(lines):
        head = _PY_DEF.match(line)
        if not head:
            continue
        indent = len(head.group(1))
        body = []
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            if nxt.strip():
                body.append(nxt.strip())
        if all(_PY_STUB_LINE.match(b) for b in body):
            return True
    return False


@memo
def _stub_completion(message: str) -> str | None:
    """The matched text when the message asks to complete code whose function body is
    still a stub (a signature and a TODO): that is asking for the whole solution."""
    if not _STUB_MARKER.search(message):
        return None
    verb = _COMPLETE_VERB.search(_prose_outside_code(message))
    if not verb:
        return None
    if _python_stub(message) or _BRACE_STUB.search(message):
        return verb.group(0)
    return None


@functools.lru_cache(maxsize=64)
def _solution_for_problem_rule(title: str) -> re.Pattern[str]:
    """ "give me the code for <this problem / its title>": the whole solution by name."""
    name = r"\s+".join(re.escape(word) for word in title.split()) or "this problem"
    return rx(
        r"\b(?:give|show|send|write|need|want|provide|tell|paste|post)\b.{0,20}\b(?:solution|answer|code|implementation|program)\s+"
        rf"(?:to|for|of)\s+(?:the\s+)?(?:\"?{name}\b\"?|this\s+(?:problem|task|question|exercise)|the\s+(?:problem|task|question|exercise))(?!'s)(?!\s+(?:input|output|parsing|statement))"
    )


def _is_on_topic(problem: ProblemContext, message: str) -> bool:
    if _ON_TOPIC.search(message):
        return True
    # A problem about, say, weather data makes "weather" on-topic.
    return bool(content_terms(message) & problem_terms(problem))


def rule_verdict_text(problem: ProblemContext, message: str) -> GuardrailVerdict:
    """The guardrail as a pure function. Precedence: jailbreak > solution_request >
    abuse > off_topic (the most dangerous violation names the turn)."""
    return _rule_verdict_text(problem.title, problem.statement, message)


@memo
def _rule_verdict_text(title: str, statement: str, message: str) -> GuardrailVerdict:
    """rule_verdict_text of a problem by the two fields the rules read (its title names
    it; its terms make a message on-topic)."""
    problem = ProblemContext("", title, statement)
    checks: tuple[tuple[Violation, str], ...] = (
        (Violation.JAILBREAK, JAILBREAK),
        (Violation.SOLUTION_REQUEST, SOLUTION),
        (Violation.ABUSE, ABUSE),
    )
    for violation, family in checks:
        hit = family_hit(family, message)
        if hit is None and violation is Violation.SOLUTION_REQUEST:
            hit = _first_rule(
                ((_solution_for_problem_rule(problem.title), "asks for the solution to the problem by name"),),
                message,
                honour_negation=True,
            )
        if hit is None and violation is Violation.SOLUTION_REQUEST:
            stub = _stub_completion(message)
            hit = ("asks to complete code that is only a signature and a TODO", stub) if stub else None
        if hit:
            label, matched = hit
            return GuardrailVerdict(True, violation, f'{violation.value}: {label} (matched "{clip(matched, 60)}")')
    if not _is_on_topic(problem, message):
        hit = family_hit(OFF_TOPIC, message)
        if hit:
            label, matched = hit
            return GuardrailVerdict(
                True,
                Violation.OFF_TOPIC,
                f'off_topic: {label} with nothing about the code or the problem (matched "{clip(matched, 60)}")',
            )
    return GuardrailVerdict.ok()


# A short message asking for "the next one" / "the rest" (not a hint): harmless alone,
# but right after a refused request for the solution it continues that extraction.
_CONTINUATION = rx(
    r"^\W*(?:(?:and|ok(?:ay)?|great|good|cool|thanks|now|so|then|what'?s|what\s+is|give\s+me|show\s+me|please)\W+){0,3}"
    r"(?:the\s+)?(?:next|following|rest|remaining|one\s+after\s+that|line\s+after\s+that)\b(?:\s+(?:one|line|lines|part|bit|piece|please))*\W*$"
    r"|^\W*(?:그\s*)?(?:다음|나머지)\s*(?:줄|부분|거|것)?\s*(?:도|은|는)?\s*(?:줘|알려\s*줘|주세요|알려\s*주세요)?\W*$"
)
_HINT_WORD = rx(r"\b(?:hints?|clues?|nudge|explain|why)\b|힌트|설명|왜")


@memo
def _continues_extraction(message: str) -> bool:
    return bool(_CONTINUATION.search(message)) and not _HINT_WORD.search(message)


def rule_verdict_in_context(problem: ProblemContext, history: Sequence[Exchange], message: str) -> GuardrailVerdict:
    """`check_guardrail_text`, plus the one case that needs the conversation: a bare
    "what's the next line?" while the candidate is pulling the solution out piece by
    piece (the earlier request was refused, every message since only asked for more)."""
    verdict = rule_verdict_text(problem, message)
    if verdict.violated or not history or not _continues_extraction(message):
        return verdict
    extracting = False
    for exchange in history:
        earlier = rule_verdict_text(problem, exchange.user)
        if earlier.violated and earlier.violation is Violation.SOLUTION_REQUEST:
            extracting = True
        elif not _continues_extraction(exchange.user):
            extracting = False
    if not extracting:
        return verdict
    return GuardrailVerdict(
        True,
        Violation.SOLUTION_REQUEST,
        f'solution_request: continues an earlier request for the solution piece by piece (matched "{clip(message, 60)}")',
    )
