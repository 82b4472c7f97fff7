"""`python -m vibe.services.scoring`: run the scoring service until SIGTERM."""

from vibe.platform.config import ScoringSettings
from vibe.platform.server import run
from vibe.services.scoring.app import scoring_app

if __name__ == "__main__":
    run("scoring", ScoringSettings.from_env, scoring_app)
