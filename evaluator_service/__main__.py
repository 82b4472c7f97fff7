"""`python -m evaluator_service`: run the evaluator and its workers until SIGTERM."""

from evaluator_service.app import evaluator_app
from vibe.config import EvaluatorSettings
from vibe.server import run

if __name__ == "__main__":
    run("evaluator", EvaluatorSettings.from_env, evaluator_app)
