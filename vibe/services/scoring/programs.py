"""A submission as something runnable: compiled (or syntax-checked) once in the sandbox, then
run once per test with the language's command and memory headroom."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from vibe.services.scoring.checkers import printable
from vibe.services.scoring.languages import Language
from vibe.services.scoring.sandbox import FilesTooLarge, RunLimits, RunResult, Sandbox, check_files_fit

MAX_SOURCE_BYTES = 256 * 1024
#: The compiler's own limits (g++ -O2 on a contest-sized file needs ~1 s and ~200 MB; it forks
#: cc1plus, as, collect2 and ld; its temporary files and the binary live in the run's tmpfs).
COMPILE_LIMITS = RunLimits(
    cpu_time_s=20,
    wall_time_s=30,
    memory_mb=1024,
    output_bytes=64 * 1024,
    file_size_bytes=64 << 20,
    max_processes=16,
    address_space_headroom_mb=64,
    runtime_memory_mb=64,
    disk_bytes=256 << 20,
    disk_inodes=256,
)


@dataclass(frozen=True)
class Program:
    language: Language
    files: dict[str, bytes]


@dataclass(frozen=True)
class CompileError:
    message: str


async def build(sandbox: Sandbox, language: Language, source: str) -> Program | CompileError:
    """Compile ``source`` (or check its syntax) in the sandbox; the result runs any number of times."""
    data = source.encode("utf-8", "surrogatepass")
    if len(data) > MAX_SOURCE_BYTES:
        return CompileError(f"source code is {len(data)} bytes, more than the {MAX_SOURCE_BYTES} allowed")
    files = {language.source_file: data}
    run = await sandbox.run(files, language.compile_argv(), b"", COMPILE_LIMITS, collect=language.artifacts)
    if not run.ok:
        # The compiler echoes the source and whatever it included: shown and stored escaped.
        message = printable((run.stderr or run.stdout).decode("utf-8", "replace").strip())
        if run.timed_out or run.cpu_limit_hit or run.output_limit_hit:
            message = "the compiler exceeded its limits (source too complex?)"
        return CompileError(message or f"compiler exit code {run.exit_code}, signal {run.signal}")
    missing = [name for name in language.artifacts if name not in run.files]
    if missing:
        return CompileError(f"the compiler produced no {', '.join(missing)}")
    return Program(language, {**files, **run.files})


def _sized(limits: RunLimits, language: Language) -> RunLimits:
    """``limits`` for the program, plus its runtime's memory headroom."""
    return replace(
        limits,
        address_space_headroom_mb=language.address_space_headroom_mb,
        runtime_memory_mb=language.runtime_memory_mb,
    )


def too_large(program: Program, limits: RunLimits) -> CompileError | None:
    """A program whose files (its source and what the compiler made of it: a huge initialised
    array is in the binary) cannot fit the directory of a run under ``limits``: the candidate's
    compile error, said once, rather than every run refused."""
    try:
        check_files_fit(program.files, _sized(limits, program.language))
    except FilesTooLarge as exc:
        return CompileError(f"the compiled program is too large to run: {exc} (fill large arrays at run time)")
    return None


async def execute(
    sandbox: Sandbox,
    program: Program,
    stdin: bytes,
    limits: RunLimits,
    args: tuple[str, ...] = (),
    still_wanted: Callable[[], bool] | None = None,
) -> RunResult:
    """Run ``program`` once; ``limits.memory_mb`` is the program's, the runtime's headroom is added."""
    lang = program.language
    return await sandbox.run(
        program.files, [*lang.run_argv(limits.memory_mb), *args], stdin, _sized(limits, lang), still_wanted=still_wanted
    )
