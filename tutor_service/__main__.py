"""`python -m tutor_service`: run the tutor until SIGTERM."""

from tutor_service.app import tutor_app
from vibe.config import TutorSettings
from vibe.server import run

if __name__ == "__main__":
    run("tutor", TutorSettings.from_env, tutor_app)
