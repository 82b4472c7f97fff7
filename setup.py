"""The package build generates the gRPC stubs (`vibe_api/`) from `protos/` first, so
`pip install .` of a clean tree ships them, and builds the web page's script bundle when it is
missing (`vibe/services/gateway/web/static/app.js`, from tools/web/ with npm); everything else
is in pyproject.toml.

The generator is loaded by path: at build time the project is not importable yet.
"""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.egg_info import egg_info

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_vibe_protos", ROOT / "vibe_dev" / "protos.py")
assert _spec is not None and _spec.loader is not None
protos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protos)


BUNDLE = ROOT / "vibe" / "services" / "gateway" / "web" / "static" / "app.js"
WEB_TOOLS = ROOT / "tools" / "web"


def build_web_bundle() -> None:
    """The page's bundle, built with npm from tools/web/ when it is missing. A build context
    without tools/web/ (the Dockerfile's build stage gets the bundle from its web stage) is left
    as it is; one with it but without npm fails, saying what to install: a wheel without the
    bundle would serve a page that cannot work."""
    if BUNDLE.is_file() or not (WEB_TOOLS / "package.json").is_file():
        if not BUNDLE.is_file():
            print(f"note: {BUNDLE.relative_to(ROOT)} is not built and tools/web/ is absent", file=sys.stderr)
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise SystemExit(
            "building the web page's bundle needs Node.js and npm (Debian: apt-get install nodejs npm); "
            "or build it first with `make web`"
        )
    subprocess.run([npm, "ci", "--prefix", str(WEB_TOOLS), "--no-audit", "--no-fund", "--silent"], check=True)
    subprocess.run(["node", str(WEB_TOOLS / "build.mjs")], check=True)


# egg_info runs first in every build (wheel, sdist, editable) and wants the package
# directories to exist; build_py is covered too for builds that skip straight to it.
class EggInfoWithStubs(egg_info):
    def run(self) -> None:
        protos.generate(ROOT)
        build_web_bundle()  # before the file lists are made, so that the wheel has it
        super().run()


class BuildPyWithStubs(build_py):
    def run(self) -> None:
        protos.generate(ROOT)
        build_web_bundle()
        super().run()


setup(
    # Namespace packages too: migrations/, web/ and the problem bank are data folders.
    packages=find_namespace_packages(include=["vibe", "vibe.*", "vibe_dev", "vibe_dev.*"]) + protos.packages(ROOT),
    cmdclass={"egg_info": EggInfoWithStubs, "build_py": BuildPyWithStubs},
)
