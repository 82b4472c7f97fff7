"""The languages a submission may be written in: one table with each language's source file,
compile command, run command and memory quirks.

Commands use absolute paths from the system (``/usr/bin``), because inside the sandbox only
``/usr`` is mounted; ``{src}`` / ``{exe}`` are file names in the run's working directory.
Programs run with the distribution's interpreters, never the service's own Python.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass


def _system_python() -> str:
    # The sandbox mounts /usr only: the distribution's interpreter, whatever runs the service
    # (a venv or a pyenv build under /root is not reachable from a run, nor should it be).
    return shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


PYTHON = _system_python()

#: Syntax check of a Python source without running it (in the sandbox, never in our process).
_PY_SYNTAX_CHECK = (
    "import sys\n"
    "src = open(sys.argv[1], 'rb').read()\n"
    "try:\n"
    "    compile(src, sys.argv[1], 'exec')\n"
    "except (SyntaxError, ValueError) as exc:\n"
    "    import traceback; sys.stderr.write(''.join(traceback.format_exception_only(type(exc), exc))); sys.exit(1)\n"
)


@dataclass(frozen=True)
class Language:
    name: str
    aliases: tuple[str, ...]
    source_file: str
    #: Command that turns the source into what ``run`` executes (compiler, or a syntax check
    #: whose only product is its verdict).  Runs in the sandbox with COMPILE limits.
    compile: tuple[str, ...]
    #: Files the compile step produces and the runs need (copied into every run's directory).
    artifacts: tuple[str, ...]
    run: tuple[str, ...]
    #: rlimits mode only: address space the runtime needs on top of the program's memory limit
    #: (measured: python -I -S maps ~16 MiB; a static C++ binary a few MiB; node reserves ~700 MiB
    #: of virtual memory for V8 before running a line, so its heap is bounded by
    #: --max-old-space-size instead).
    address_space_headroom_mb: int
    #: Resident memory of the runtime itself, granted on top of the program's memory limit in the
    #: run's cgroup (measured here: python -I -S ~8 MiB, a C++ program ~2 MiB, node ~45 MiB).
    runtime_memory_mb: int
    #: stderr fragments that mean "ran out of memory" in this runtime.
    memory_error_markers: tuple[bytes, ...]

    def run_argv(self, memory_mb: int) -> list[str]:
        return [part.format(src=self.source_file, exe="solution", heap_mb=memory_mb) for part in self.run]

    def compile_argv(self) -> list[str]:
        return [part.format(src=self.source_file, exe="solution") for part in self.compile]


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        Language(
            name="python",
            aliases=("python", "python3", "py"),
            source_file="solution.py",
            compile=(PYTHON, "-I", "-S", "-c", _PY_SYNTAX_CHECK, "{src}"),
            artifacts=(),
            run=(PYTHON, "-I", "-S", "{src}"),
            address_space_headroom_mb=32,
            runtime_memory_mb=16,
            memory_error_markers=(b"MemoryError", b"Cannot allocate memory"),
        ),
        Language(
            name="cpp",
            aliases=("cpp", "c++", "cxx", "g++"),
            source_file="solution.cpp",
            compile=("/usr/bin/g++", "-O2", "-std=c++17", "-pipe", "-o", "{exe}", "{src}"),
            artifacts=("solution",),
            run=("./{exe}",),
            address_space_headroom_mb=16,
            runtime_memory_mb=8,
            memory_error_markers=(b"std::bad_alloc", b"Cannot allocate memory"),
        ),
        Language(
            name="javascript",
            aliases=("javascript", "js", "node", "nodejs"),
            source_file="solution.js",
            compile=("/usr/bin/node", "--check", "{src}"),
            artifacts=(),
            run=("/usr/bin/node", "--max-old-space-size={heap_mb}", "{src}"),
            address_space_headroom_mb=1024,
            runtime_memory_mb=64,
            memory_error_markers=(
                b"JavaScript heap out of memory",
                b"Array buffer allocation failed",
                b"Fatal process out of memory",
                b"Cannot allocate memory",
            ),
        ),
    )
}

_BY_ALIAS = {alias: lang for lang in LANGUAGES.values() for alias in lang.aliases}

#: Reference solution file name per language in a problem folder.
REFERENCE_FILES = {"python": "reference.py", "cpp": "reference.cpp", "javascript": "reference.js"}


class UnsupportedLanguage(ValueError):
    pass


def language(name: str) -> Language:
    lang = _BY_ALIAS.get(name.strip().lower())
    if lang is None:
        raise UnsupportedLanguage(f"unsupported language {name!r}; supported: {', '.join(LANGUAGES)}")
    return lang
