"""`python -m vibe.services.gateway`: run the public gateway until SIGTERM."""

from vibe.platform.config import GatewaySettings
from vibe.platform.server import run
from vibe.services.gateway.app import gateway_app

if __name__ == "__main__":
    run("gateway", GatewaySettings.from_env, gateway_app)
