"""The package build generates the gRPC stubs (`vibe_api/`) from `protos/` first, so
`pip install .` of a clean tree ships them; everything else is in pyproject.toml.

The generator is loaded by path: at build time the project is not importable yet.
"""

import importlib.util
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.egg_info import egg_info

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_vibe_protos", ROOT / "vibe_dev" / "protos.py")
assert _spec is not None and _spec.loader is not None
protos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protos)


# egg_info runs first in every build (wheel, sdist, editable) and wants the package
# directories to exist; build_py is covered too for builds that skip straight to it.
class EggInfoWithStubs(egg_info):
    def run(self) -> None:
        protos.generate(ROOT)
        super().run()


class BuildPyWithStubs(build_py):
    def run(self) -> None:
        protos.generate(ROOT)
        super().run()


setup(
    # Namespace packages too: migrations/, web/ and the problem bank are data folders.
    packages=find_namespace_packages(include=["vibe", "vibe.*", "vibe_dev", "vibe_dev.*"]) + protos.packages(ROOT),
    cmdclass={"egg_info": EggInfoWithStubs, "build_py": BuildPyWithStubs},
)
