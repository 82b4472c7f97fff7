"""`python -m vibe.services.evaluator`: run the evaluator and its workers until SIGTERM."""

from vibe.platform.config import EvaluatorSettings
from vibe.platform.server import run
from vibe.services.evaluator.app import evaluator_app

if __name__ == "__main__":
    run("evaluator", EvaluatorSettings.from_env, evaluator_app)
