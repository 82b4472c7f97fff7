"""The images (Dockerfile, .dockerignore, the compose file's use of them), checked without a
Docker engine: the Dockerfile is parsed, and the wheel its build stage makes is built here from
the same build context."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

#: Packages that compile or link code, or install Python packages: none may be in an image that
#: runs, except g++ in scoring (it compiles the candidates' C++ submissions: a run-time need).
BUILD_TOOLS = {
    "gcc",
    "g++",
    "cpp",
    "clang",
    "llvm",
    "build-essential",
    "make",
    "cmake",
    "binutils",
    "libc6-dev",
    "python3-dev",
    "python3-pip",
    "python3-venv",
    "python3-setuptools",
    "git",
    "curl",
    "wget",
}
SCORING_RUNTIME_NEEDS = {"g++", "nodejs"}


@dataclass
class Stage:
    name: str
    parent: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]

    def apt_packages(self) -> set[str]:
        packages: set[str] = set()
        for run in self.args("RUN"):
            for command in re.split(r"&&|;|\|\|", run):
                words = command.split()
                if "apt-get" in words and "install" in words:
                    packages |= {w for w in words[words.index("install") + 1 :] if not w.startswith("-")}
                assert "apt " not in command and "aptitude" not in command, f"{self.name}: install with apt-get"
        return packages


@dataclass
class Dockerfile:
    args: dict[str, str]  # global ARGs (before the first FROM) and their defaults
    stages: dict[str, Stage]

    def lineage(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, itself first."""
        chain = [self.stages[name]]
        while chain[-1].parent in self.stages:
            chain.append(self.stages[chain[-1].parent])
        return chain


def parse_dockerfile(text: str) -> Dockerfile:
    """Logical lines (continuations joined, comments dropped) grouped into stages."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation"
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            assert match and match[2], f"every stage is named: {line}"
            current = Stage(match[2], match[1])
            stages[current.name] = current
        elif current is None:
            assert instruction == "ARG", f"only ARG may precede the first FROM: {line}"
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        else:
            current.instructions.append((instruction, rest.strip()))
    return Dockerfile(args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_the_parser_sees_stages_packages_and_continuations() -> None:
    parsed = parse_dockerfile(
        "ARG B=debian:12@sha256:" + "0" * 64 + "\n"
        "FROM ${B} AS one\n# a comment\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends a b \\\n"
        "    c && rm -rf /x\nFROM one AS two\nUSER 1:1\n"
    )
    assert parsed.args == {"B": "debian:12@sha256:" + "0" * 64}
    assert parsed.stages["one"].apt_packages() == {"a", "b", "c"}
    assert [s.name for s in parsed.lineage("two")] == ["two", "one"] and parsed.stages["two"].args("USER") == ["1:1"]


def test_the_base_image_is_pinned_by_digest(dockerfile: Dockerfile) -> None:
    image = dockerfile.args["BASE_IMAGE"]
    match = re.fullmatch(r"(?P<repo>[a-z0-9./-]+):(?P<tag>[A-Za-z0-9._-]+)@sha256:[0-9a-f]{64}", image)
    assert match, f"{image}: a tag for the reader and a digest for the bytes"
    assert match["tag"] != "latest" and re.search(r"\d", match["tag"]), "a versioned tag, not a moving one"
    for stage in dockerfile.stages.values():
        assert stage.parent in ("${BASE_IMAGE}", *dockerfile.stages), f"{stage.name} starts FROM the pinned image"


def test_stages_build_once_and_run_without_build_tools(dockerfile: Dockerfile) -> None:
    assert {"build", "base", "runtime", "scoring"} <= set(dockerfile.stages)
    build = dockerfile.stages["build"]
    runs = " ".join(build.args("RUN"))
    assert "pip wheel" in runs, "the build stage builds the wheel (which generates the gRPC stubs)"
    assert re.search(r"\bcc\b[^&]*-static[^&]*-o /out/vibe-box vibe/services/scoring/vibe-box\.c", runs)
    assert {"gcc", "libc6-dev"} <= build.apt_packages()
    for target, allowed in (("runtime", set()), ("scoring", {"g++"})):
        chain = dockerfile.lineage(target)
        assert "build" not in [s.name for s in chain], f"{target} is not built on the build stage"
        installed = set().union(*(s.apt_packages() for s in chain))
        assert installed & BUILD_TOOLS == allowed, f"{target} installs {sorted(installed & BUILD_TOOLS)}"
        for stage in chain:
            assert not any(re.search(r"\bpip\b", run) for run in stage.args("RUN")), f"{stage.name} runs pip"
            copies = [c for c in stage.args("COPY") if c.startswith("--from=")]
            assert all(c.split()[0] == "--from=build" for c in copies)
            assert {c.split()[1] for c in copies} <= {"/opt/vibe", "/out/vibe-box"}, "only the artefacts cross over"
    assert dockerfile.stages["scoring"].apt_packages() >= SCORING_RUNTIME_NEEDS
    assert "python3" in dockerfile.stages["base"].apt_packages(), "Debian's python3: also what Python submissions run"


def test_the_web_stage_builds_the_bundle_into_the_wheel_and_ships_no_node(dockerfile: Dockerfile) -> None:
    web, build = dockerfile.stages["web"], dockerfile.stages["build"]
    assert {"nodejs", "npm"} <= web.apt_packages()
    runs = " ".join(web.args("RUN"))
    assert "npm ci --prefix tools/web" in runs, "the packages of the lock file, nothing resolved anew"
    assert "node tools/web/build.mjs" in runs
    assert "--from=web /src/vibe/services/gateway/web/static ./vibe/services/gateway/web/static" in build.args("COPY")
    for target in ("runtime", "scoring"):
        chain = dockerfile.lineage(target)
        assert "web" not in [s.name for s in chain]
        assert "npm" not in set().union(*(s.apt_packages() for s in chain)), f"{target} ships npm"
    assert _ignored("vibe/services/gateway/web/static/app.js", _dockerignore_patterns()), "a local bundle stays out"
    assert not _ignored("tools/web/package-lock.json", _dockerignore_patterns())


def test_runtime_users_and_the_sandbox_helper(dockerfile: Dockerfile) -> None:
    runtime, scoring = dockerfile.stages["runtime"], dockerfile.stages["scoring"]
    (user,) = runtime.args("USER")
    uid = user.partition(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric and not root, so runAsNonRoot can check it"
    assert scoring.args("USER") == ["0:0"], "the sandbox needs root (README: Running code)"
    assert scoring.args("COPY") == ["--from=build /out/vibe-box /usr/local/bin/vibe-box"]
    assert "SCORING_SANDBOX_HELPER=/usr/local/bin/vibe-box" in scoring.args("ENV")
    helper_copies = [c for s in dockerfile.stages.values() for c in s.args("COPY") if "vibe-box" in c]
    assert len(helper_copies) == 1, "only the scoring image has the helper"
    for stage in (runtime, scoring):
        assert not any("--chown" in c for c in stage.args("COPY")), "COPY without --chown: owned by root"


def test_compose_builds_each_service_from_its_stage(
    dockerfile: Dockerfile, compose: dict[str, dict[str, object]]
) -> None:
    for name in ("gateway", "tutor", "evaluator", "scoring"):
        service = compose[name]
        target = "scoring" if name == "scoring" else "runtime"
        assert service["build"] == {"context": ".", "target": target}, name
        assert target in dockerfile.stages
        if name == "scoring":
            assert service["user"] == "root" and service["privileged"] is True
        else:
            assert "user" not in service and "privileged" not in service and "cap_add" not in service, name


def _dockerignore_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not understood by this check"
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", line.strip("/")):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        patterns.append(re.compile(regex))
    return patterns


def _ignored(rel: str, patterns: list[re.Pattern[str]]) -> bool:
    """Docker's rule: a path is left out when it or one of its parent directories matches."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(p.fullmatch(prefix) for p in patterns for prefix in prefixes)


def test_dockerignore_matching() -> None:
    patterns = [re.compile(r"(?:.*/)?__pycache__"), re.compile(r"vibe_api"), re.compile(r"[^/]*\.egg-info")]
    assert _ignored("vibe/x/__pycache__/a.pyc", patterns) and _ignored("__pycache__/a", patterns)
    assert _ignored("vibe_api/tutor/v1/x.py", patterns) and _ignored("a.egg-info/PKG-INFO", patterns)
    assert not _ignored("vibe/services/tutor/core.py", patterns) and not _ignored("b/a.egg-info", patterns)


def test_the_wheel_from_the_build_context_holds_every_file_of_the_packages(
    dockerfile: Dockerfile, tmp_path: Path
) -> None:
    """What the build stage does, without Docker: copy what its COPY lines name, less what
    .dockerignore leaves out, and build the wheel. Every file of vibe/ and vibe_dev/ (problem bank,
    reference solutions in every language, migrations, the page) must be in it, and the stubs."""
    patterns = _dockerignore_patterns()
    context = tmp_path / "context"
    sources = [
        src
        for copy in dockerfile.stages["build"].args("COPY")
        if not copy.startswith("--")
        for src in copy.split()[:-1]
    ]
    assert {"protos", "vibe", "vibe_dev", "setup.py", "pyproject.toml"} <= set(sources)
    expected: set[str] = set()
    for src in sources:
        assert not _ignored(src, patterns), f".dockerignore leaves out {src}, which the build copies"
        paths = [ROOT / src] if (ROOT / src).is_file() else sorted((ROOT / src).rglob("*"))
        for path in paths:
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and not _ignored(rel, patterns):
                (context / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, context / rel)
                if rel.startswith(("vibe/", "vibe_dev/")):
                    expected.add(rel)
    assert not any("__pycache__" in rel for rel in expected)
    # What the web stage adds: the bundle this tree built (make setup), where the build stage puts it.
    for copy in dockerfile.stages["build"].args("COPY"):
        if copy.startswith("--from=web "):
            dest = copy.split()[2].removeprefix("./")
            for path in sorted((ROOT / dest).rglob("*")):
                rel = path.relative_to(ROOT).as_posix()
                (context / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, context / rel)
                expected.add(rel)
    assert "vibe/services/gateway/web/static/app.js" in expected, "the bundle is built (make setup)"
    # Without build isolation: the dev environment has the build requirements (setuptools,
    # grpcio-tools, mypy-protobuf), and the test needs no download.
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-cache-dir", "-q"),
            *("-w", str(tmp_path / "wheels"), str(context)),
        ],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("vibe_coding_test-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(expected - names)
    assert not missing, f"the image would lack {len(missing)} files, e.g. {missing[:5]}"
    for service in ("gateway", "tutor", "evaluator", "scoring"):
        assert f"vibe_api/{service}/v1/{service}_pb2_grpc.py" in names, "the package build generated the stubs"
    assert any(n.endswith("/problems/two-sum/reference.cpp") for n in names)
