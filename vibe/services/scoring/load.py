"""`python -m vibe.services.scoring.load [problems_dir]`: validate the problem bank and load it into
PostgreSQL (DATABASE_URL, VIBE_DB_SCHEMA); prints what changed.  The service also does this at
start-up; this command is for loading a bank without starting it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from vibe.platform.config import CommonSettings
from vibe.platform.db import connect_pool
from vibe.services.scoring.bank import DEFAULT_PROBLEMS_DIR, ProblemBankError, load_problem_bank
from vibe.services.scoring.store import sync_problem_bank


async def load(problems_dir: Path) -> int:
    try:
        problems = load_problem_bank(problems_dir)
    except ProblemBankError as exc:
        print(f"problem bank is invalid: {exc}", file=sys.stderr)
        return 2
    common = CommonSettings.from_env(who="problems load")
    db = await connect_pool(common.database_url, common.db_schema)
    try:
        changed = await sync_problem_bank(db, problems)
    finally:
        await db.close()
    for p in problems:
        print(f"{p.problem_id}: {'loaded' if p.problem_id in changed else 'unchanged'} ({len(p.tests)} tests)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(load(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PROBLEMS_DIR)))
