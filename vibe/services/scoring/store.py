"""The scoring service's records: the problem bank in PostgreSQL, test results and
final scores."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import asyncpg

from vibe.platform.errors import FailedPrecondition, NotFound
from vibe.platform.storefaults import idempotent
from vibe.services.scoring.bank import ProblemSpec, TestCase, load_problem_bank
from vibe.services.scoring.grading import FinalScores
from vibe.services.scoring.judge import CheckResult
from vibe.shared.records import hold_submit_fence


def _content_hash(p: ProblemSpec) -> str:
    h = hashlib.sha256(
        json.dumps(
            [
                p.title,
                p.difficulty,
                p.spec_json(),
                p.reference_solution,
                p.references,
                p.scale_generator,
                p.checker_source,
            ],
            sort_keys=True,
        ).encode()
    )
    for t in p.tests:
        h.update(f"{t.test_id}:{t.hidden}:{t.large}:".encode())
        h.update(hashlib.sha256(t.input).digest())
        h.update(hashlib.sha256(t.expected).digest())
    return h.hexdigest()


async def sync_problem_bank(db: asyncpg.Pool, problems: list[ProblemSpec] | None = None) -> list[str]:
    """Upserts the problem bank files into PostgreSQL; returns the ids that changed.

    A problem whose content hash is unchanged is left alone, so restarts are cheap and
    several replicas starting at once write the same rows.
    """
    problems = load_problem_bank() if problems is None else problems
    changed = []
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('vibe-problem-bank'))")
        current = {
            r["problem_id"]: r["content_hash"]
            for r in await conn.fetch("SELECT problem_id, content_hash FROM problems")
        }
        for p in problems:
            digest = _content_hash(p)
            if current.get(p.problem_id) == digest:
                continue
            await conn.execute(
                """
                INSERT INTO problems (problem_id, title, difficulty, spec, reference_solution, content_hash,
                    reference_solutions, scale_generator, checker_source)
                VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9)
                ON CONFLICT (problem_id) DO UPDATE SET title = EXCLUDED.title, difficulty = EXCLUDED.difficulty,
                    spec = EXCLUDED.spec, reference_solution = EXCLUDED.reference_solution,
                    content_hash = EXCLUDED.content_hash, reference_solutions = EXCLUDED.reference_solutions,
                    scale_generator = EXCLUDED.scale_generator, checker_source = EXCLUDED.checker_source,
                    updated_at = now()
                """,
                p.problem_id,
                p.title,
                p.difficulty,
                json.dumps(p.spec_json(), ensure_ascii=False),
                p.reference_solution,
                digest,
                json.dumps(p.references),
                p.scale_generator,
                p.checker_source,
            )
            await conn.execute("DELETE FROM problem_tests WHERE problem_id = $1", p.problem_id)
            await conn.executemany(
                "INSERT INTO problem_tests (problem_id, test_id, hidden, large, input, expected)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                [(p.problem_id, t.test_id, t.hidden, t.large, t.input, t.expected) for t in p.tests],
            )
            changed.append(p.problem_id)
    return changed


async def load_problems(db: asyncpg.Pool) -> dict[str, ProblemSpec]:
    """Every problem with its tests, as stored (PostgreSQL is the source at run time)."""
    tests: dict[str, list[TestCase]] = {}
    rows = await db.fetch(
        "SELECT problem_id, test_id, hidden, large, input, expected FROM problem_tests ORDER BY problem_id, test_id"
    )
    for r in rows:
        tests.setdefault(r["problem_id"], []).append(
            TestCase(r["test_id"], r["hidden"], bytes(r["input"]), bytes(r["expected"]), large=r["large"])
        )
    problems = {}
    for r in await db.fetch(
        "SELECT problem_id, title, difficulty, spec, reference_solution, reference_solutions, scale_generator,"
        " checker_source FROM problems ORDER BY problem_id"
    ):
        problems[r["problem_id"]] = ProblemSpec.from_stored(
            r["problem_id"],
            r["title"],
            r["difficulty"],
            json.loads(r["spec"]),
            r["reference_solution"],
            tuple(tests.get(r["problem_id"], ())),
            json.loads(r["reference_solutions"]),
            r["scale_generator"],
            r["checker_source"],
        )
    return problems


@idempotent
async def save_test_results(db: asyncpg.Pool, session_id: str, result: CheckResult, fence: int = 0) -> None:
    async with db.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT 1 FROM submissions WHERE session_id = $1", session_id) is None:
            raise FailedPrecondition(f"session {session_id!r} has no submission to attach test results to")
        await hold_submit_fence(conn, session_id, fence)
        await conn.execute("DELETE FROM test_results WHERE session_id = $1", session_id)
        await conn.executemany(
            "INSERT INTO test_results (session_id, test_id, hidden, verdict, cpu_ms, wall_ms, peak_memory_kb,"
            " exit_code, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (
                    session_id,
                    t.test_id,
                    t.hidden,
                    str(t.verdict),
                    t.cpu_ms,
                    t.wall_ms,
                    t.peak_memory_kb,
                    t.exit_code,
                    t.detail,
                )
                for t in result.tests
            ],
        )
        await conn.execute(
            """
            INSERT INTO code_checks (session_id, language, isolation, time_limit_ms, complexity, integrity)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)
            ON CONFLICT (session_id) DO UPDATE SET language = EXCLUDED.language, isolation = EXCLUDED.isolation,
                time_limit_ms = EXCLUDED.time_limit_ms, complexity = EXCLUDED.complexity,
                integrity = EXCLUDED.integrity, created_at = now()
            """,
            session_id,
            result.language,
            result.isolation_mode,
            result.time_limit_ms,
            json.dumps(dataclasses.asdict(result.complexity) if result.complexity else None),
            json.dumps(dataclasses.asdict(result.integrity)),
        )


@idempotent
async def tutor_replies(db: asyncpg.Pool, session_id: str) -> list[tuple[int, str]]:
    """(turn, content) of every tutor reply of the session (the gateway's `messages` table)."""
    rows = await db.fetch(
        "SELECT turn, content FROM messages WHERE session_id = $1 AND role = 'assistant' ORDER BY turn", session_id
    )
    return [(r["turn"], r["content"]) for r in rows]


@idempotent
async def save_final_scores(db: asyncpg.Pool, session_id: str, scores: FinalScores, fence: int = 0) -> None:
    try:
        async with db.acquire() as conn, conn.transaction():
            await hold_submit_fence(conn, session_id, fence)
            await conn.execute(
                """
                INSERT INTO final_scores (session_id, holistic_flow_score, aggregate_turn_score, prompt_score,
                    performance_score, correctness_score, total_score, grade, formula)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (session_id) DO UPDATE SET holistic_flow_score = EXCLUDED.holistic_flow_score,
                    aggregate_turn_score = EXCLUDED.aggregate_turn_score, prompt_score = EXCLUDED.prompt_score,
                    performance_score = EXCLUDED.performance_score, correctness_score = EXCLUDED.correctness_score,
                    total_score = EXCLUDED.total_score, grade = EXCLUDED.grade, formula = EXCLUDED.formula,
                    created_at = now()
                """,
                session_id,
                scores.holistic_flow_score,
                scores.aggregate_turn_score,
                scores.prompt_score,
                scores.performance_score,
                scores.correctness_score,
                scores.total_score,
                scores.grade,
                scores.formula,
            )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound(f"no session {session_id!r}") from None
