"""The reviewers' page links the turns an evaluation's evidence cites (web/src/evidence.js), in
the wordings judges write, English and Korean; run in Node.js (a system dependency: `make setup`
installs it for the scoring service's JavaScript submissions) on the module itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from vibe.services.gateway.http_api import WEB_DIR

MODULE = Path(str(WEB_DIR)) / "src" / "evidence.js"

# (evidence, the turns the session has, the turns that must be linked or cited)
CASES = [
    ("turns 1, 2: 1 distinct intent(s) (hint_query); no generation turn", {1, 2}, [1, 2]),
    ("turn 3: checked what the AI said", {1, 2, 3}, [3]),
    ("turns 2 and 4: follow-ups building on earlier answers", {1, 2, 3, 4}, [2, 4]),
    ("Turns 2, 3, and 5 improved after a weak turn", set(range(1, 6)), [2, 3, 5]),
    ("turns 2-4 debug the same bug; turn #6 tests it", set(range(1, 7)), [2, 3, 4, 6]),
    ("turns 1 to 3 plan the work", {1, 2, 3}, [1, 2, 3]),
    ("3번째 턴에서 테스트를 요청했습니다", {1, 2, 3}, [3]),
    ("1번, 3번 턴은 계획을 세웠고 턴 4와 5는 디버깅입니다", set(range(1, 6)), [1, 3, 4, 5]),
    ("2~4턴에 걸쳐 같은 버그를 고쳤습니다", set(range(1, 6)), [2, 3, 4]),
    # numbers that are not citations, and citations of turns the session does not have
    ("2 tests failed and 3 passed after 10 minutes", {1, 2, 3}, []),
    ("turn 9 asked for the solution", {1, 2}, []),
    ("no turns", {1}, []),
]

SCRIPT = """
const src = require("fs").readFileSync(process.argv[1], "utf8");
import("data:text/javascript," + encodeURIComponent(src)).then((m) => {
  const cases = JSON.parse(process.argv[2]);
  const out = cases.map(([text, existing]) => {
    const set = new Set(existing);
    const pieces = m.citeTurns(text, set);
    return {
      cited: m.citedTurns(text, set),
      linked: pieces.filter((p) => p.turn).map((p) => p.turn),
      whole: pieces.map((p) => p.text).join(""),
      linkText: pieces.filter((p) => p.turn).map((p) => p.text),
    };
  });
  console.log(JSON.stringify(out));
});
"""


def test_evidence_links_the_turns_it_cites() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (make setup installs nodejs)")
    cases = [[text, sorted(existing)] for text, existing, _ in CASES]
    result = subprocess.run(
        [node, "-e", SCRIPT, str(MODULE), json.dumps(cases)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for (text, _, expected), got in zip(CASES, json.loads(result.stdout), strict=True):
        assert got["cited"] == expected, (text, got)
        assert got["whole"] == text, "the text is kept whole around the links"
        # Every linked number is written in the text, each link is just the number.
        assert set(got["linked"]) <= set(expected) and all(t.lstrip("#").isdigit() for t in got["linkText"])
        assert set(expected) - set(got["linked"]) <= set(range(min(expected or [0]) + 1, max(expected or [0]))), (
            "only a range's inside is cited without a link of its own"
        )
