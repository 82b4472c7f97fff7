"""`python -m vibe.services.tutor`: run the tutor until SIGTERM."""

from vibe.platform.config import TutorSettings
from vibe.platform.server import run
from vibe.services.tutor.app import tutor_app

if __name__ == "__main__":
    run("tutor", TutorSettings.from_env, tutor_app)
