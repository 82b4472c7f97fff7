"""`python -m scoring_service`: run the scoring service until SIGTERM."""

from scoring_service.app import scoring_app
from vibe.config import ScoringSettings
from vibe.server import run

if __name__ == "__main__":
    run("scoring", ScoringSettings.from_env, scoring_app)
