"""The problem bank: problems stored as folders under ``vibe/services/scoring/problems/<problem_id>/``.

Each folder holds ``problem.json`` (the spec, statement in English and Korean), a correct and
efficient reference solution per language (``reference.py``, ``reference.cpp``,
``reference.js``), ``scale.py`` (``python scale.py N`` prints an input of size N: the scaling
inputs of the complexity estimate), ``checker.py`` when the checker is ``custom``, and ``tests/``
with ``NN.in`` / ``NN.out`` pairs listed in ``tests/tests.json``
(``[{"id": "01", "hidden": false, "large": false}, ...]``).  ``gen.py`` regenerates the tests
deterministically.  Entries of ``problems/`` whose name starts with ``_`` or ``.`` and plain
files are ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibe.services.scoring.checkers import CHECKERS
from vibe.services.scoring.languages import LANGUAGES, REFERENCE_FILES

DEFAULT_PROBLEMS_DIR = Path(__file__).resolve().parent / "problems"

DIFFICULTIES = ("easy", "medium", "hard")
#: Scaling inputs: doubling sizes from large_input_n/128 (where even a quadratic solution
#: finishes) to large_input_n/2 (the large tests themselves cover the full size).
SCALING_SHIFTS = range(7, 0, -1)
MAX_TEST_FILE_BYTES = 2 * 1024 * 1024
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TEST_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class ProblemBankError(Exception):
    """A problem folder is missing something or contains something invalid."""


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest test class

    test_id: str
    hidden: bool
    input: bytes
    expected: bytes
    large: bool = False

    def __repr__(self) -> str:  # keep logs short: never dump the data
        return (
            f"TestCase(test_id={self.test_id!r}, hidden={self.hidden}, large={self.large}, "
            f"input={len(self.input)} bytes, expected={len(self.expected)} bytes)"
        )


@dataclass(frozen=True)
class ProblemSpec:
    problem_id: str
    title: str
    difficulty: str
    statement: str
    input_format: str
    output_format: str
    time_limit_ms: int
    memory_limit_mb: int
    starter_code: str
    hints: tuple[str, ...]
    checker: str
    reference_solution: str
    tests: tuple[TestCase, ...]
    large_input_n: int = 0
    statement_ko: str = ""
    float_tolerance: float = 1e-6
    #: language -> reference source (python's is also ``reference_solution``).
    references: dict[str, str] = field(default_factory=dict)
    scale_generator: str = ""
    checker_source: str = ""

    # The fields stored as the `problems.spec` JSON column (tests, references, the generator and
    # the checker are stored apart: never shown to candidates).
    SPEC_FIELDS = (
        "statement",
        "statement_ko",
        "input_format",
        "output_format",
        "time_limit_ms",
        "memory_limit_mb",
        "starter_code",
        "hints",
        "checker",
        "large_input_n",
        "float_tolerance",
    )

    @property
    def scaling_sizes(self) -> tuple[int, ...]:
        if not self.large_input_n or not self.scale_generator:
            return ()
        return tuple(max(2, self.large_input_n >> k) for k in SCALING_SHIFTS)

    def spec_json(self) -> dict[str, Any]:
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in self.SPEC_FIELDS}

    @classmethod
    def from_stored(
        cls,
        problem_id: str,
        title: str,
        difficulty: str,
        spec: dict[str, Any],
        reference_solution: str,
        tests: tuple[TestCase, ...],
        references: dict[str, str],
        scale_generator: str,
        checker_source: str,
    ) -> ProblemSpec:
        fields = {name: spec[name] for name in cls.SPEC_FIELDS if name in spec}
        fields["hints"] = tuple(fields.get("hints", ()))
        return cls(
            problem_id=problem_id,
            title=title,
            difficulty=difficulty,
            reference_solution=reference_solution,
            tests=tests,
            references=references,
            scale_generator=scale_generator,
            checker_source=checker_source,
            **fields,
        )

    @property
    def visible_tests(self) -> tuple[TestCase, ...]:
        return tuple(t for t in self.tests if not t.hidden)

    @property
    def hidden_tests(self) -> tuple[TestCase, ...]:
        return tuple(t for t in self.tests if t.hidden)

    def __repr__(self) -> str:
        return f"ProblemSpec(problem_id={self.problem_id!r}, tests={len(self.tests)})"


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "title": str,
    "difficulty": str,
    "statement": str,
    "statement_ko": str,
    "input_format": str,
    "output_format": str,
    "time_limit_ms": int,
    "memory_limit_mb": int,
    "starter_code": str,
    "hints": list,
    "checker": str,
}


def _fail(path: Path, what: str) -> ProblemBankError:
    return ProblemBankError(f"{path}: {what}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(path, "file is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"cannot read JSON: {exc}") from None


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _fail(path, "file is missing") from None
    if size > MAX_TEST_FILE_BYTES:
        raise _fail(path, f"file is {size} bytes, more than the {MAX_TEST_FILE_BYTES} allowed")
    return path.read_bytes()


def _check_python(path: Path, source: str, what: str) -> None:
    try:
        compile(source, str(path), "exec")  # our own trusted files only, never candidate code
    except (SyntaxError, ValueError) as exc:
        raise _fail(path, f"{what} is not valid Python: {exc}") from None


def _read_source(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(path, "file is missing") from None
    if not text.strip():
        raise _fail(path, f"the {what} is empty")
    return text


def load_problem(folder: Path) -> ProblemSpec:
    """Load and validate one problem folder."""
    pj = folder / "problem.json"
    spec = _read_json(pj)
    if not isinstance(spec, dict):
        raise _fail(pj, "must be a JSON object")
    for key, typ in _REQUIRED.items():
        if key not in spec:
            raise _fail(pj, f"missing key {key!r}")
        value = spec[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise _fail(pj, f"{key!r} must be of type {getattr(typ, '__name__', typ)}, got {type(value).__name__}")
        if isinstance(value, str) and key != "starter_code" and not value.strip():
            raise _fail(pj, f"{key!r} must not be empty")
    pid = spec["id"]
    if not _ID_RE.match(pid):
        raise _fail(pj, f"id {pid!r} must be lowercase letters, digits and dashes")
    if pid != folder.name:
        raise _fail(pj, f"id {pid!r} does not match the folder name {folder.name!r}")
    if spec["difficulty"] not in DIFFICULTIES:
        raise _fail(pj, f"difficulty must be one of {DIFFICULTIES}, got {spec['difficulty']!r}")
    if spec["checker"] not in CHECKERS:
        raise _fail(pj, f"checker must be one of {CHECKERS}, got {spec['checker']!r}")
    if not 100 <= spec["time_limit_ms"] <= 60_000:
        raise _fail(pj, "time_limit_ms must be between 100 and 60000")
    if not 16 <= spec["memory_limit_mb"] <= 4096:
        raise _fail(pj, "memory_limit_mb must be between 16 and 4096")
    hints = spec["hints"]
    if not 1 <= len(hints) <= 10 or not all(isinstance(h, str) and h.strip() for h in hints):
        raise _fail(pj, "hints must be a list of 1 to 10 non-empty strings")
    large_n = spec.get("large_input_n", 0)
    if not isinstance(large_n, int) or isinstance(large_n, bool) or large_n < 0:
        raise _fail(pj, "large_input_n must be a non-negative integer")
    _check_python(pj, spec["starter_code"], "starter_code")
    tolerance = spec.get("float_tolerance", 1e-6)
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not 0 < tolerance < 1:
        raise _fail(pj, "float_tolerance must be a number between 0 and 1")

    references = {lang: _read_source(folder / REFERENCE_FILES[lang], "reference solution") for lang in LANGUAGES}
    _check_python(folder / "reference.py", references["python"], "the reference solution")
    scale_generator = _read_source(folder / "scale.py", "scaling generator") if large_n else ""
    checker_source = _read_source(folder / "checker.py", "checker") if spec["checker"] == "custom" else ""

    tdir = folder / "tests"
    tj = tdir / "tests.json"
    listing = _read_json(tj)
    if not isinstance(listing, list) or not listing:
        raise _fail(tj, "must be a non-empty JSON list")
    tests: list[TestCase] = []
    seen: set[str] = set()
    for n, entry in enumerate(listing):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise _fail(tj, f"entry #{n} must be an object with a string 'id'")
        tid = entry["id"]
        if not _TEST_ID_RE.match(tid):
            raise _fail(tj, f"test id {tid!r} is not a valid file stem")
        if tid in seen:
            raise _fail(tj, f"duplicate test id {tid!r}")
        seen.add(tid)
        hidden, large = entry.get("hidden"), entry.get("large", False)
        if not isinstance(hidden, bool) or not isinstance(large, bool):
            raise _fail(tj, f"test {tid!r}: 'hidden' (required) and 'large' must be booleans")
        extra = set(entry) - {"id", "hidden", "large"}
        if extra:
            raise _fail(tj, f"test {tid!r}: unknown keys {sorted(extra)}")
        data = _read_bytes(tdir / f"{tid}.in")
        expected = _read_bytes(tdir / f"{tid}.out")
        if not expected.split():
            raise _fail(tdir / f"{tid}.out", "expected output is empty")
        tests.append(TestCase(tid, hidden, data, expected, large))
    if not any(not t.hidden for t in tests):
        raise _fail(tj, "needs at least one visible test (the statement's examples)")
    if not any(t.hidden for t in tests):
        raise _fail(tj, "needs at least one hidden test")
    for f in tdir.iterdir():
        if f.name == "tests.json":
            continue
        if f.suffix not in (".in", ".out") or f.stem not in seen:
            raise _fail(f, "file is not listed in tests.json")

    return ProblemSpec(
        problem_id=pid,
        title=spec["title"].strip(),
        difficulty=spec["difficulty"],
        statement=spec["statement"],
        input_format=spec["input_format"],
        output_format=spec["output_format"],
        time_limit_ms=spec["time_limit_ms"],
        memory_limit_mb=spec["memory_limit_mb"],
        starter_code=spec["starter_code"],
        hints=tuple(hints),
        checker=spec["checker"],
        reference_solution=references["python"],
        tests=tuple(tests),
        large_input_n=large_n,
        statement_ko=spec["statement_ko"],
        float_tolerance=float(tolerance),
        references=references,
        scale_generator=scale_generator,
        checker_source=checker_source,
    )


def bank_files(root: Path = DEFAULT_PROBLEMS_DIR) -> list[Path]:
    """Every file of the problem bank: what no submitted program may read (hidden tests,
    reference solutions, generators, checkers)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def load_problem_bank(root: Path = DEFAULT_PROBLEMS_DIR) -> list[ProblemSpec]:
    """Load every problem under ``root`` (sorted by id); raise ProblemBankError on any defect."""
    root = Path(root)
    if not root.is_dir():
        raise _fail(root, "problem bank directory does not exist")
    problems = [load_problem(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(("_", "."))]
    if not problems:
        raise _fail(root, "no problems found")
    return problems
