"""`python -m gateway`: run the public gateway until SIGTERM."""

from gateway.app import gateway_app
from vibe.config import GatewaySettings
from vibe.server import run

if __name__ == "__main__":
    run("gateway", GatewaySettings.from_env, gateway_app)
