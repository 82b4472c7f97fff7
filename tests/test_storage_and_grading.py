"""Migrations under concurrent start-up, and the grading formula of docs/DESIGN.md §2."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from vibe.platform.config import ScoringSettings
from vibe.platform.db import apply_migrations
from vibe.platform.errors import InvalidArgument
from vibe.services.scoring.grading import final_scores
from vibe_dev.scratch import DATABASE_URL

SETTINGS_ENV = {"VIBE_SERVICE_SECRET": "s" * 32}  # the only variable a service may not leave unset


async def test_migrations_are_idempotent_and_safe_when_services_start_together(isolated_env: dict[str, str]) -> None:
    schema = isolated_env["VIBE_DB_SCHEMA"]
    results = await asyncio.gather(*(apply_migrations(DATABASE_URL, schema) for _ in range(4)))
    applied = [names for names in results if names]
    assert len(applied) == 1, "exactly one starter applies the migrations"
    assert await apply_migrations(DATABASE_URL, schema) == []
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        versions = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        assert len(versions) == len(applied[0])
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("holistic", "turns", "performance", "correctness", "total", "grade"),
    [
        (100, 100, 100, 100, 100.0, "A+"),
        (70, 60, 60, 70, 65.0, "D"),
        (60, 60, 55.83, 72.0, 62.35, "D"),
        (50, 40, 60, 55, 52.5, "F"),
        (90, 90, 90, 90, 90.0, "A"),
        (0, 0, 0, 0, 0.0, "F"),
    ],
)
def test_grading_formula_and_bands(
    holistic: float, turns: float, performance: float, correctness: float, total: float, grade: str
) -> None:
    scores = final_scores(ScoringSettings.from_env(SETTINGS_ENV), holistic, turns, performance, correctness)
    assert scores.prompt_score == pytest.approx((holistic + turns) / 2)
    assert scores.total_score == pytest.approx(total, abs=0.01)
    assert scores.grade == grade


def test_design_examples_grade_as_the_design_says() -> None:
    bands = ScoringSettings.from_env(SETTINGS_ENV).bands
    assert bands.grade(64.25) == "D"
    assert bands.grade(53.31) == "F"
    assert bands.grade(95) == "A+" and bands.grade(94.99) == "A"


def test_weights_and_bands_are_settings() -> None:
    settings = ScoringSettings.from_env(
        {
            **SETTINGS_ENV,
            "VIBE_WEIGHT_PROMPT": "0.2",
            "VIBE_WEIGHT_PERFORMANCE": "0.2",
            "VIBE_WEIGHT_CORRECTNESS": "0.6",
            "VIBE_GRADE_D": "50",
        }
    )
    scores = final_scores(settings, 50, 50, 50, 60)
    assert scores.total_score == pytest.approx(0.2 * 50 + 0.2 * 50 + 0.6 * 60)
    assert scores.grade == "D"
    assert "0.6 * correctness" in scores.formula


@pytest.mark.parametrize("bad", [-1.0, 100.5, float("nan")])
def test_out_of_range_components_are_rejected(bad: float) -> None:
    with pytest.raises(InvalidArgument):
        final_scores(ScoringSettings.from_env(SETTINGS_ENV), bad, 50, 50, 50)


async def test_problem_bank_round_trips_through_postgres(isolated_env: dict[str, str]) -> None:
    from vibe.platform.db import connect_pool
    from vibe.services.scoring.bank import load_problem_bank
    from vibe.services.scoring.store import load_problems, sync_problem_bank

    pool = await connect_pool(DATABASE_URL, isolated_env["VIBE_DB_SCHEMA"])
    try:
        files = load_problem_bank()
        assert len(files) >= 3
        assert sorted(await sync_problem_bank(pool, files)) == sorted(p.problem_id for p in files)
        assert await sync_problem_bank(pool, files) == [], "an unchanged bank is not rewritten"
        stored = await load_problems(pool)
    finally:
        await pool.close()
    assert stored == {p.problem_id: p for p in files}
