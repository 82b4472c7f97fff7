"""Hostile programs against the sandbox, in each language where the attack applies (no database,
no gRPC).  Small limits keep them fast: 1 s CPU, 2 s wall."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from vibe.services.scoring.isolation import SANDBOX_UID, IsolationMode, detect_mode
from vibe.services.scoring.judge import Verdict, failure
from vibe.services.scoring.languages import language
from vibe.services.scoring.programs import Program, build, execute
from vibe.services.scoring.sandbox import RunLimits, RunResult, Sandbox

FAST = RunLimits(cpu_time_s=1, wall_time_s=2, memory_mb=64, output_bytes=64 * 1024)
#: Slack on top of a limit for the sandbox to notice, kill and clean up.
MARGIN_S = 1.5
BWRAP = pytest.mark.skipif(detect_mode() is not IsolationMode.BUBBLEWRAP, reason="bubblewrap cannot run here")


def _procs_of_uid(uid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.add(int(entry))
            except OSError:
                continue
    return found


def _procs_with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _wait_gone(marker: str, timeout: float = 2.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _procs_with_marker(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture(params=[IsolationMode.BUBBLEWRAP, IsolationMode.RLIMITS])
def sandbox(request) -> Sandbox:
    if request.param is IsolationMode.BUBBLEWRAP and detect_mode() is not IsolationMode.BUBBLEWRAP:
        pytest.skip("bubblewrap cannot run here")
    return Sandbox(max_parallel_runs=2, mode=request.param)


async def run(
    sandbox: Sandbox, lang: str, source: str, limits: RunLimits = FAST, stdin: bytes = b""
) -> tuple[RunResult, float]:
    program = await build(sandbox, language(lang), source)
    assert isinstance(program, Program), program
    before = _procs_of_uid(SANDBOX_UID) if os.geteuid() == 0 else set()
    start = time.monotonic()
    result = await execute(sandbox, program, stdin, limits)
    elapsed = time.monotonic() - start
    if os.geteuid() == 0:  # nothing of the run's uid survives it
        deadline = time.monotonic() + 1.0
        while (left := _procs_of_uid(SANDBOX_UID) - before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"processes left behind: {left}"
    return result, elapsed


def verdict(result: RunResult, lang: str, limits: RunLimits = FAST) -> Verdict | None:
    found = failure(result, language(lang), limits)
    return None if found is None else found[0]


# ----------------------------------------------------------------------------- normal runs


@pytest.mark.parametrize(
    ("lang", "source"),
    [
        ("python", "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"),
        ("cpp", '#include <iostream>\nint main(){long a,s=0;while(std::cin>>a)s+=a;std::cout<<s<<"\\n";}\n'),
        (
            "javascript",
            "const d=require('fs').readFileSync(0,'utf8').split(/\\s+/).filter(Boolean);"
            "console.log(d.reduce((s,x)=>s+Number(x),0));\n",
        ),
    ],
)
async def test_normal_run_reports_output_cpu_and_memory(sandbox: Sandbox, lang: str, source: str):
    r, _ = await run(sandbox, lang, source, stdin=b"1 2 3\n4\n")
    assert r.ok and r.stdout == b"10\n" and r.stderr == b""
    assert r.cpu_ms > 0 and r.wall_ms > 0 and r.peak_memory_kb > 1000
    assert r.isolation is await sandbox.mode()


async def test_compile_error_is_reported_with_the_compiler_message(sandbox: Sandbox):
    bad = await build(sandbox, language("cpp"), "int main() { return x; }\n")
    assert not isinstance(bad, Program) and "was not declared" in bad.message
    bad = await build(sandbox, language("javascript"), "function (\n")
    assert not isinstance(bad, Program) and "SyntaxError" in bad.message
    bad = await build(sandbox, language("python"), "def f(:\n")
    assert not isinstance(bad, Program) and "SyntaxError" in bad.message


# ----------------------------------------------------------------------------- hostile programs

FORK_BOMB = {
    "python": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "cpp": "#include <unistd.h>\nint main(){ while(true) fork(); }\n",
    "javascript": "const cp=require('child_process');\nwhile(true){try{cp.spawn(process.execPath,['-e','for(;;);'])}catch(e){}}\n",
}


@pytest.mark.parametrize("lang", sorted(FORK_BOMB))
async def test_fork_bomb_is_contained(sandbox: Sandbox, lang: str):
    r, elapsed = await run(sandbox, lang, FORK_BOMB[lang])
    assert not r.ok
    assert verdict(r, lang) in (Verdict.TIME_LIMIT_EXCEEDED, Verdict.RUNTIME_ERROR, Verdict.MEMORY_LIMIT_EXCEEDED)
    assert elapsed < FAST.wall_time_s + MARGIN_S, elapsed


MEMORY_BOMB = {
    "python": "chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 6))\n",
    "cpp": "#include <vector>\n#include <cstring>\nint main(){ std::vector<char*> v; while(true){ char* p = new char[1<<20];"
    " std::memset(p, 1, 1<<20); v.push_back(p);} }\n",
    "javascript": "const a=[];\nwhile(true){a.push(new Array(1e5).fill(1.5));}\n",
}


@pytest.mark.parametrize("lang", sorted(MEMORY_BOMB))
async def test_memory_bomb_is_memory_limit(sandbox: Sandbox, lang: str):
    r, elapsed = await run(sandbox, lang, MEMORY_BOMB[lang])
    assert verdict(r, lang) is Verdict.MEMORY_LIMIT_EXCEEDED, (r.exit_code, r.signal, r.stderr[-300:])
    assert elapsed < FAST.wall_time_s + MARGIN_S


async def test_huge_single_allocation_is_memory_limit(sandbox: Sandbox):
    r, _ = await run(sandbox, "python", "x = bytearray(10 ** 10)\n")
    assert verdict(r, "python") is Verdict.MEMORY_LIMIT_EXCEEDED
    r, _ = await run(sandbox, "cpp", "#include <vector>\nint main(){ std::vector<long> v(1L<<33); return v[5]; }\n")
    assert verdict(r, "cpp") is Verdict.MEMORY_LIMIT_EXCEEDED, r.stderr


INFINITE_LOOP = {
    "python": "while True:\n    pass\n",
    "cpp": "int main(){ volatile long x = 0; while(true) x++; }\n",
    "javascript": "for(;;){}\n",
}


@pytest.mark.parametrize("lang", sorted(INFINITE_LOOP))
async def test_infinite_loop_hits_cpu_limit(sandbox: Sandbox, lang: str):
    r, elapsed = await run(sandbox, lang, INFINITE_LOOP[lang])
    assert r.cpu_limit_hit and verdict(r, lang) is Verdict.TIME_LIMIT_EXCEEDED
    assert r.cpu_ms >= 900
    assert elapsed < FAST.cpu_time_s + MARGIN_S, elapsed


SLEEP_FOREVER = {
    "python": "import time\ntime.sleep(1000)\n",
    "cpp": "#include <unistd.h>\nint main(){ sleep(1000); }\n",
    "javascript": "setTimeout(() => {}, 1e9);\n",
}


@pytest.mark.parametrize("lang", sorted(SLEEP_FOREVER))
async def test_sleep_forever_hits_wall_limit(sandbox: Sandbox, lang: str):
    r, elapsed = await run(sandbox, lang, SLEEP_FOREVER[lang])
    assert r.timed_out and not r.cpu_limit_hit and verdict(r, lang) is Verdict.TIME_LIMIT_EXCEEDED
    assert elapsed < FAST.wall_time_s + MARGIN_S, elapsed


GIGABYTE_OF_OUTPUT = {
    "python": "import sys\nblock = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(block)\n",
    "cpp": "#include <cstdio>\n#include <string>\nint main(){ std::string b(1<<20,'x'); for(int i=0;i<1024;i++)"
    " fwrite(b.data(),1,b.size(),stdout); }\n",
    "javascript": "const b='x'.repeat(1<<20);\nfor(let i=0;i<1024;i++) process.stdout.write(b);\n",
}


@pytest.mark.parametrize("lang", sorted(GIGABYTE_OF_OUTPUT))
async def test_gigabyte_of_output_is_cut_quickly(sandbox: Sandbox, lang: str):
    r, elapsed = await run(sandbox, lang, GIGABYTE_OF_OUTPUT[lang])
    assert r.output_limit_hit and verdict(r, lang) is Verdict.OUTPUT_LIMIT_EXCEEDED
    assert len(r.stdout) <= FAST.output_bytes
    assert elapsed < 2.0, elapsed


async def test_endless_stderr_is_capped_keeping_the_tail(sandbox: Sandbox):
    r, _ = await run(sandbox, "python", "import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n")
    assert r.output_limit_hit and len(r.stderr) <= 8 * 1024
    code = "import sys\nsys.stderr.write('noise\\n' * 20000)\nraise ValueError('the-last-line')\n"
    r, _ = await run(sandbox, "python", code, RunLimits(cpu_time_s=1, wall_time_s=3, memory_mb=64))
    assert r.exit_code == 1 and r.stderr.rstrip().endswith(b"ValueError: the-last-line")


SECRET = "s3cr3t-" + uuid.uuid4().hex
READ_SECRETS = {
    "python": "import os\nprint(dict(os.environ))\n"
    "try:\n    print(open('/proc/1/environ', 'rb').read())\nexcept OSError as e:\n    print('denied', e)\n",
    "javascript": "const fs=require('fs');\nconsole.log(JSON.stringify(process.env));\n"
    "try{console.log(fs.readFileSync('/proc/1/environ','latin1'))}catch(e){console.log('denied',e.code)}\n",
}


@pytest.mark.parametrize("lang", sorted(READ_SECRETS))
async def test_environment_and_proc_1_environ_do_not_leak(sandbox: Sandbox, lang: str, monkeypatch):
    monkeypatch.setenv("VIBE_SECRET_FOR_TEST", SECRET)
    r, _ = await run(sandbox, lang, READ_SECRETS[lang])
    assert r.ok, r.stderr
    assert SECRET.encode() not in r.stdout and b"VIBE_SECRET_FOR_TEST" not in r.stdout
    assert b"DATABASE_URL" not in r.stdout and b"GEMINI" not in r.stdout


async def test_writing_outside_the_temp_dir_fails(sandbox: Sandbox):
    marker = f"vibe-escape-{uuid.uuid4().hex}"
    targets = [f"{Path.cwd()}/{marker}", f"/{marker}", f"/usr/{marker}", f"/etc/{marker}", f"/root/{marker}"]
    if await sandbox.mode() is IsolationMode.BUBBLEWRAP:  # the fallback can write world-writable dirs
        targets.append(f"{tempfile.gettempdir()}/{marker}")
    code = (
        "import os\nfor p in %r:\n    try:\n        open(p, 'w').write('x'); print('wrote', p)\n"
        "    except OSError as e:\n        print('no', p)\nopen('inside.txt', 'w').write('fine')\nprint(os.getcwd())\n"
        % targets
    )
    r, _ = await run(sandbox, "python", code)
    assert r.ok and b"wrote" not in r.stdout, r.stdout
    for p in targets:
        assert not Path(p).exists()


async def test_file_size_limit(sandbox: Sandbox):
    code = "open('big.bin', 'wb').write(b'x' * (4 << 20))\n"
    r, _ = await run(
        sandbox, "python", code, RunLimits(cpu_time_s=1, wall_time_s=3, memory_mb=64, file_size_bytes=1 << 20)
    )
    assert not r.ok and (b"File too large" in r.stderr or r.signal is not None)


@BWRAP
@pytest.mark.parametrize("lang", ["python", "javascript"])
async def test_no_network_not_even_loopback(lang: str):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    code = {
        "python": f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1); print('CONNECTED')\n"
        "except OSError as e:\n    print('refused', e)\n",
        "javascript": f"const s=require('net').connect({port},'127.0.0.1',()=>{{console.log('CONNECTED');s.end()}});"
        "s.on('error',e=>console.log('refused',e.code));\n",
    }[lang]
    try:
        r, _ = await run(Sandbox(2, IsolationMode.BUBBLEWRAP), lang, code)
        assert b"refused" in r.stdout and b"CONNECTED" not in r.stdout, r.stdout
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


async def test_kill_stop_own_group_is_a_wall_time_limit(sandbox: Sandbox):
    r, elapsed = await run(sandbox, "python", "import os, signal\nos.kill(0, signal.SIGSTOP)\n")
    assert verdict(r, "python") is Verdict.TIME_LIMIT_EXCEEDED and r.timed_out
    assert elapsed < FAST.wall_time_s + MARGIN_S


async def test_killing_the_parent_leaves_nothing_behind(sandbox: Sandbox):
    marker = f"vibe-marker-{uuid.uuid4().hex}"
    code = (
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(100)', {marker!r}])\n"
        "try:\n    os.kill(os.getppid(), 9)\nexcept OSError as e:\n    print('cannot', e)\n"
        "time.sleep(100)\n"
    )
    r, elapsed = await run(sandbox, "python", code)
    assert not r.ok
    assert verdict(r, "python") in (Verdict.RUNTIME_ERROR, Verdict.TIME_LIMIT_EXCEEDED)
    assert elapsed < FAST.wall_time_s + MARGIN_S
    assert _wait_gone(marker) == []


BACKGROUND = {
    "python": "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
    "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(100)', 'MARK'])\n"
    "    os._exit(0)\nos.wait()\nprint('started')\n",
    "cpp": "#include <unistd.h>\n#include <cstdio>\nint main(){ if(fork()==0){ setsid(); if(fork()==0){"
    ' execl("/bin/sleep","sleep","100","MARK",(char*)0);} _exit(0);} sleep(0); puts("started"); }\n',
    "javascript": "const cp=require('child_process');\n"
    "cp.spawn('/bin/sleep',['100','MARK'],{detached:true,stdio:'ignore'}).unref();\nconsole.log('started');\n",
}


@pytest.mark.parametrize("lang", sorted(BACKGROUND))
async def test_background_process_is_killed(sandbox: Sandbox, lang: str):
    marker = f"vibe-marker-{uuid.uuid4().hex}"
    r, elapsed = await run(sandbox, lang, BACKGROUND[lang].replace("MARK", marker))
    assert r.stdout.strip() == b"started", r.stderr
    assert elapsed < FAST.wall_time_s, "did not wait for the background process"
    assert _wait_gone(marker) == []


async def test_temp_dir_is_removed_and_program_that_closes_stdin_is_fine(sandbox: Sandbox):
    before = set(Path(tempfile.gettempdir()).glob("vibe-run-*"))
    big = b"1 " * (2 << 20)  # 4 MiB, more than a pipe buffer
    r, _ = await run(
        sandbox, "python", "import os\nos.close(0)\nopen('scratch', 'w').write('x')\nprint('done')\n", stdin=big
    )
    assert r.exit_code == 0 and r.stdout == b"done\n"
    assert set(Path(tempfile.gettempdir()).glob("vibe-run-*")) == before


def test_limits_validation():
    with pytest.raises(ValueError):
        RunLimits(cpu_time_s=0, wall_time_s=1, memory_mb=64)
