"""The candidate's and the reviewers' pages in a real browser (headless Chromium, Debian's, through
chromedriver: tests/support/browser.py) against the four real services: the page as a candidate
uses it, in Korean and in English. Screenshots go to test-artifacts/ (gitignored); with
VIBE_SCREENSHOTS=docs the README's two are rewritten under docs/screenshots/."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path

import aiohttp
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.support.browser import ARTIFACTS, ROOT, Browser, chromium
from tests.support.stack import REFERENCE, Stack, StartStack, gemini_stack
from vibe_api.gateway.v1 import gateway_pb2
from vibe_dev.fake_gemini import FakeGemini, Reply

DOCS = ROOT / "docs" / "screenshots"

# A tutor reply in Markdown that also tries every way a model's text could run script in the page.
HOSTILE_REPLY = (
    "### 접근 방법\n\n",
    "먼저 **작은 예제**로 확인해 보세요:\n\n```python\nfor i in range(3):\n",
    "    print(i)\n```\n\n",
    '<img src="x" onerror="window.__xss = 1"> <script>window.__xss = 2</script>\n\n',
    '[클릭](javascript:window.__xss=3) 그리고 <a href="javascript:window.__xss=4">여기</a>\n\n',
    '![추적](http://127.0.0.1:9/pixel.png) <iframe src="http://127.0.0.1:9/"></iframe>\n\n',
    "- 입력 크기를 생각해 보세요\n- 해시 맵은 어떨까요?\n",
)
WRONG = "print(0)\n"


def _docs_screenshots() -> bool:
    return os.environ.get("VIBE_SCREENSHOTS", "") == "docs"


def start_session(b: Browser, base: str, api_key: str, candidate: str) -> None:
    b.get(base + "/")
    b.visible("#begin")
    b.wait("the problem list", lambda: len(b.all("#problem option")) > 0)
    b.find("#candidate").send_keys(candidate)
    Select(b.find("#problem")).select_by_value("two-sum")
    b.find("#apikey").send_keys(api_key)
    b.find("#begin").click()
    b.visible("#workspace")


def candidate_in_korean(base: str, api_key: str) -> None:
    with chromium("ko-KR") as b:
        b.get(base + "/")
        # The browser's language chose Korean: the interface text and <html lang>.
        b.visible("#begin")
        assert b.js("return document.documentElement.lang") == "ko"
        assert b.find("#start-h").text == "세션 시작" and b.find("#begin").text == "시작"
        start_session(b, base, api_key, "kim.web")
        assert not b.errors(), b.errors()
        assert b.visible("#timer").text.startswith("남은 시간 "), "the session has a time limit"

        # The statement: Markdown rendered (headings, code blocks), in Korean where the bank has it.
        statement = b.find("#statement")
        assert b.all("#statement pre code"), "the example input is a code block"
        assert b.all("#statement h3") and "###" not in statement.text and "```" not in statement.text
        assert b.js("return document.querySelector('#statement').lang") == "ko"

        # A streamed reply renders as Markdown while it arrives (before `completed`), and nothing
        # in it runs.
        b.find("#message").send_keys("어떻게 시작하면 좋을까요?")
        b.find("#send").click()
        bubble = b.visible(".msg.assistant")
        b.wait(
            "Markdown rendered while the reply was still streaming",
            lambda: bubble.get_attribute("aria-busy") == "true" and bubble.find_elements(By.CSS_SELECTOR, "h3, strong"),
            timeout_s=60,
        )
        b.wait("the reply to complete", lambda: bubble.get_attribute("aria-busy") is None, timeout_s=60)
        assert bubble.find_elements(By.CSS_SELECTOR, "pre code .tok-keyword"), "the code block is highlighted"
        assert [e.text for e in bubble.find_elements(By.CSS_SELECTOR, "li")] == [
            "입력 크기를 생각해 보세요",
            "해시 맵은 어떨까요?",
        ]
        assert b.js("return window.__xss") is None
        assert not b.all("#chat script, #chat img, #chat iframe, #chat [onerror]"), "no tag of the reply's own"
        hrefs = [a.get_attribute("href") or "" for a in b.all("#chat a")]
        assert not any(h.lower().startswith("javascript:") for h in hrefs), hrefs
        assert "<script>window.__xss = 2</script>" in bubble.text, "the tags are shown as text"

        # The editor: highlighting, line numbers, Tab indents.
        assert b.all("#editor .cm-lineNumbers .cm-gutterElement")
        b.paste("#editor .cm-content", "x = 1\n")
        content = b.find("#editor .cm-content")
        content.click()
        content.send_keys(Keys.CONTROL, Keys.HOME)
        content.send_keys(Keys.TAB)
        b.wait("Tab to indent the line", lambda: b.find("#editor .cm-line").text.startswith("    x = 1"))
        b.paste("#editor .cm-content", "def solve():\n    return 0\n")
        b.wait("highlighting in the editor", lambda: b.all("#editor .cm-content .tok-keyword"))

        # The visible tests, before submitting: a wrong program, then the reference.
        b.paste("#editor .cm-content", WRONG)
        b.find("#run").click()
        b.wait("the verdicts of a wrong program", lambda: b.all("#run-results .verdict.wrong_answer"), timeout_s=60)
        assert "통과" in b.find("#run-status").text and "채점에 반영되지 않음" in b.find("#run-status").text
        assert "오답" in {e.text for e in b.all("#run-results .verdict")}, "verdicts in the interface's language"
        b.paste("#editor .cm-content", REFERENCE)
        b.find("#run").click()
        b.wait(
            "every visible test accepted",
            lambda: (
                (rows := b.all("#run-results .verdict"))
                and all("accepted" in (r.get_attribute("class") or "") for r in rows)
                and len(rows) >= 2
            ),
            timeout_s=60,
        )
        b.save("candidate-ko")
        if _docs_screenshots():
            b.screenshot_full(DOCS / "candidate-ko.png")

        # Submit: confirmed, with progress, then the report (VIBE_CANDIDATE_REPORT=full here).
        b.find("#submit").click()
        b.driver.switch_to.alert.accept()
        b.visible("#report .grade", timeout_s=120)
        assert b.find("#report h2").text == "리포트"
        assert b.find("#submit-progress").text, "the submit showed its progress"
        assert b.js("return window.__xss") is None
        assert not b.errors(), b.errors()
        b.save("candidate-ko-report")


async def test_the_candidate_page_in_korean(start_stack: StartStack, fake: FakeGemini) -> None:
    fake.chunk_delay_s = 0.25  # slow enough that the test sees the reply render mid-stream
    fake.script("tutor_reply", Reply(chunks=HOSTILE_REPLY))
    async with gemini_stack(start_stack, fake, VIBE_SESSION_TIME_LIMIT_S="3600") as stack:
        await asyncio.to_thread(candidate_in_korean, f"http://{stack.addrs.http}", stack.api_key)


def timer_in_english(base: str, api_key: str, limit_s: int) -> str:
    with chromium("en-US", width=390, height=844, phone=True) as b:
        start_session(b, base, api_key, "jane.timer")
        assert b.js("return document.documentElement.lang") == "en"
        assert b.find("#run").text == "Run the visible tests"
        timer = b.visible("#timer")
        assert timer.text.startswith("Time left 00:"), timer.text
        # At phone width the two columns become one: the editor is below the chat, not beside it.
        chat, editor = b.find("#chat").rect, b.find("#editor").rect
        assert editor["y"] > chat["y"] + chat["height"] and editor["width"] <= 390
        assert b.js("return document.documentElement.scrollWidth") <= 390, "nothing wider than the phone"
        # Switching the language: the text, <html lang>, remembered across a reload.
        Select(b.find("#lang")).select_by_value("ko")
        assert b.js("return document.documentElement.lang") == "ko" and b.find("#run").text == "공개 테스트 실행"
        b.driver.refresh()
        b.visible("#workspace")
        assert b.find("#timer").text.startswith("남은 시간")
        Select(b.find("#lang")).select_by_value("en")
        # Every control has a name a screen reader can say; the keyboard walks from the message
        # through the editor (Tab indents there; Esc, then Tab, leaves it) to the run button.
        unnamed = b.js(
            """return [...document.querySelectorAll(arguments[0])]
              .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                             && !e.getAttribute('aria-labelledby') && !e.textContent.trim())
              .map((e) => e.outerHTML.slice(0, 80));""",
            "#workspace button, #workspace select, #workspace textarea, #workspace input, "
            "#workspace [contenteditable=true], header select",
        )
        assert unnamed == [], unnamed
        assert b.find("#chat").get_attribute("aria-live") == "polite"
        assert b.find("#run-results").find_element(By.XPATH, "..").get_attribute("aria-live") == "polite"

        def focused() -> str:
            return str(b.js("const e = document.activeElement; return e.id || e.className"))

        b.find("#message").click()
        walk = []
        for key in (Keys.TAB, Keys.TAB, Keys.TAB, Keys.TAB, Keys.ESCAPE, Keys.TAB):
            b.driver.switch_to.active_element.send_keys(key)
            walk.append(focused())
        assert walk[:2] == ["send", "language"], walk
        assert all("cm-content" in w for w in walk[2:5]), "Tab stays in the editor, indenting"
        assert walk[5] == "run", walk
        b.paste("#editor .cm-content", REFERENCE)
        session_id = b.js("return JSON.parse(sessionStorage.getItem('vibe-session')).id")
        # The end of the time submits the code by itself (no confirmation), and the report comes.
        b.visible("#report", timeout_s=limit_s + 90)
        # VIBE_CANDIDATE_REPORT=released: a receipt, until a reviewer releases the report.
        assert b.find("#report h2").text == "Submitted" and "hiring team" in b.find("#report").text
        assert not b.all("#report .grade")
        assert b.find("#timer").text == "Time is up."
        assert b.find("#send").get_property("disabled") and b.find("#run").get_property("disabled")
        assert not b.errors(), b.errors()
        b.save("candidate-en-timer")
        return str(session_id)


async def test_the_timer_ends_the_session_and_submits(start_stack: StartStack) -> None:
    limit_s = 30  # room for the steps before it ends on a loaded machine
    async with start_stack(VIBE_SESSION_TIME_LIMIT_S=str(limit_s), VIBE_CANDIDATE_REPORT="released") as stack:
        base = f"http://{stack.addrs.http}"
        session_id = await asyncio.to_thread(timer_in_english, base, stack.api_key, limit_s)
        async with aiohttp.ClientSession() as http:
            headers = {"X-API-Key": stack.api_key}
            async with http.get(f"{base}/api/sessions/{session_id}/report", headers=headers) as r:
                report = await r.json()
        assert r.status == 200 and report["submitted_code"] == REFERENCE, "the code in the editor was submitted"
        assert report["code"]["passed"] == report["code"]["total"]


def reviewer(base: str, api_key: str, session_id: str, downloads: Path) -> None:
    with chromium("en-US", downloads=downloads) as b:
        b.get(base + "/review")
        b.visible("#key").send_keys(api_key)
        b.find("#key-form button[type=submit]").click()
        row = f"#sessions-table a[href='#{session_id}']"
        b.wait("the session in the list", lambda: b.all(row))
        # The status filter: the graded session is among the graded, not among the active.
        Select(b.find("#status-filter")).select_by_value("active")
        b.wait("the active sessions", lambda: not b.all(row))
        Select(b.find("#status-filter")).select_by_value("graded")
        link = b.wait("the graded sessions", lambda: next(iter(b.all(row)), None))
        link.click()
        b.visible(".turn", timeout_s=30)
        turns = b.all(".turn")
        assert [t.get_attribute("id") for t in turns] == ["turn-1", "turn-2"]
        for turn in turns:  # the transcript beside the evaluation, on one row
            said = turn.find_element(By.CSS_SELECTOR, ".transcript-cell").rect
            judged = turn.find_element(By.CSS_SELECTOR, ".evaluation-cell").rect
            assert judged["x"] >= said["x"] + said["width"] - 1 and abs(judged["y"] - said["y"]) < 5
            assert turn.find_elements(By.CSS_SELECTOR, ".evaluation-cell tr.rubric"), "the rubric drill-down"
        # The holistic criteria link the turns they cite.
        cites = b.all(".holistic a.cite")
        targets = [(c.get_attribute("href") or "").rsplit("#", 1)[-1] for c in cites]
        assert targets and set(targets) <= {"turn-1", "turn-2"}, targets
        cites[0].click()
        target = targets[0]
        b.wait("the cited turn to take focus", lambda: b.js("return document.activeElement.id") == target)
        # How the conversation was judged: with the last turn's evaluation, no call at submit.
        assert "judged with turn 2's evaluation (precomputed" in b.find(".holistic-when").text
        # Code, tests and integrity.
        assert b.find("pre.submitted").text.strip() == REFERENCE.strip()
        assert b.all(".verdict.accepted")
        # Export: a JSON download of the whole session.
        b.find("#export").click()
        exported = downloads / f"session-{session_id}.json"
        b.wait("the export to download", lambda: exported.exists() and exported.stat().st_size > 0)
        data = json.loads(exported.read_text())
        assert data["format"] == "vibe.session-export/v1" and len(data["turns"]) == 2
        b.save("reviewer")
        if _docs_screenshots():
            b.screenshot_full(DOCS / "reviewer.png")
        # Printing: the controls are left out, the transcript and evaluations stay.
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        assert not b.find("#key-form").is_displayed() and not b.find("#export").is_displayed()
        assert b.find(".turns").is_displayed()
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        pdf = base64.b64decode(b.driver.print_page())
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
        (ARTIFACTS / "reviewer.pdf").write_bytes(pdf)
        # Releasing the report to the candidate.
        b.find("#release").click()
        b.wait("the release to show", lambda: "released" in b.find("#session-view .meta").text)
        assert not b.all("#release")
        # The interface in Korean too.
        Select(b.find("#lang")).select_by_value("ko")
        assert b.find("#export").text == "JSON 내보내기"
        assert not b.errors(), b.errors()


async def test_the_reviewer_page_shows_the_transcript_beside_the_evaluations(
    start_stack: StartStack, tmp_path: Path
) -> None:
    async with start_stack() as stack:
        base = f"http://{stack.addrs.http}"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                base + "/api/sessions",
                json={"candidate_id": "rev.web", "problem_id": "two-sum"},
                headers={"X-API-Key": stack.api_key},
            ) as r:
                created = await r.json()
            sid, auth = created["session"]["session_id"], {"Authorization": f"Bearer {created['session_token']}"}
            for message in ("How should I think about pairs that sum to a target?", "Would a hash map lookup work?"):
                async with http.post(f"{base}/api/sessions/{sid}/chat", json={"message": message}, headers=auth) as r:
                    await r.read()
            async with http.post(
                f"{base}/api/sessions/{sid}/submit", json={"language": "python", "code": REFERENCE}, headers=auth
            ) as r:
                await r.read()
                assert r.status == 200
        started = time.monotonic()
        await asyncio.to_thread(reviewer, base, stack.api_key, sid, tmp_path)
        assert time.monotonic() - started < 170


def open_link(base: str, session_id: str, token: str) -> None:
    with chromium("ko") as b:
        b.get(f"{base}/#session={session_id}&token={token}")
        b.visible("#workspace")
        assert b.find("#title").text == "Two Sum"
        assert b.js("return location.hash") == "", "the token leaves the address bar (and the history)"
        assert not b.find("#start").is_displayed()
        assert not b.errors(), b.errors()


async def test_a_link_from_the_hiring_team_opens_the_session(stack: Stack) -> None:
    created = await stack.gateway.CreateSession(
        gateway_pb2.CreateSessionRequest(candidate_id="linked", problem_id="two-sum"), metadata=stack.key_auth
    )
    await asyncio.to_thread(open_link, f"http://{stack.addrs.http}", created.session.session_id, created.session_token)
