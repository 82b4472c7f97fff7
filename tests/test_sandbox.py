"""Hostile programs against the sandbox, in each language where the attack applies (no database,
no gRPC).  Small limits keep them fast: 1 s CPU, 2 s wall.

Every test runs in the isolation the service uses by default (``namespaces``); the tests that
apply to the development mode (``rlimits``) run there too.  Nothing is skipped: a machine where
the sandbox cannot run fails these tests with the sandbox's own explanation.
"""

from __future__ import annotations

import socket
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.sandboxes import (
    FAST,
    MARGIN_S,
    SLOTS,
    UID_BASE,
    existing,
    run,
    run_dirs,
    run_with_late_keeper,
    verdict,
    wait_gone,
)
from vibe.services.scoring.bank import bank_files
from vibe.services.scoring.isolation import IsolationMode
from vibe.services.scoring.judge import Verdict
from vibe.services.scoring.languages import language
from vibe.services.scoring.programs import Program, build, execute
from vibe.services.scoring.sandbox import RunLimits, Sandbox

NAMESPACES, RLIMITS = IsolationMode.NAMESPACES, IsolationMode.RLIMITS


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
async def test_normal_run_reports_output_cpu_and_memory(sandbox: Sandbox, lang: str, source: str) -> None:
    r, _ = await run(sandbox, lang, source, stdin=b"1 2 3\n4\n")
    assert r.ok and r.stdout == b"10\n" and r.stderr == b""
    assert r.cpu_ms > 0 and r.wall_ms > 0 and r.peak_memory_kb > 1000
    assert r.isolation is sandbox.mode


# A program that burns BURN_US of CPU (by its own clock, which counts from its fork) and prints
# how much it used: the sandbox must never report less than that.
BURN_CPU = """#include <cstdio>
#include <ctime>
static long long cpu_us() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}
int main() {
    volatile unsigned long x = 0;
    while (cpu_us() < BURN_US)
        for (int i = 0; i < 1000; i++) x = x + i;
    std::printf("%lld\\n", cpu_us());
}
"""


async def burner(sandbox: Sandbox, burn_us: int) -> Program:
    program = await build(sandbox, language("cpp"), BURN_CPU.replace("BURN_US", str(burn_us)))
    assert isinstance(program, Program), program
    return program


async def test_short_programs_are_charged_all_of_their_cpu_time(sandbox: Sandbox) -> None:
    """Programs over within a few milliseconds, run back to back: each one's CPU time is all
    there, never a part of it (nor zero), whenever the launcher got round to looking."""
    program = await burner(sandbox, 2000)
    for _ in range(20):
        r = await execute(sandbox, program, b"", FAST)
        assert r.ok, r
        # The program's clock in microseconds; the report's too (cpu_ms has three decimals).
        assert round(r.cpu_ms * 1000) >= int(r.stdout), (r.cpu_ms, r.stdout)


async def test_cpu_time_counts_from_the_programs_start_however_late_the_keeper_looks(isolated: Sandbox) -> None:
    """The keeper held from before the program starts until after it ended (a loaded machine at
    its worst): the run's CPU time is still all of the program's."""
    program = await burner(isolated, 20_000)
    r, _ = await run_with_late_keeper(isolated, program)
    assert r.ok, r
    assert round(r.cpu_ms * 1000) >= int(r.stdout) >= 20_000, (r.cpu_ms, r.stdout)
    assert r.wall_ms >= 20, r


async def test_wall_time_counts_from_the_programs_start_however_late_the_keeper_looks(isolated: Sandbox) -> None:
    """The keeper held for longer than the wall limit after the program started: once it looks,
    the limit is over (counted from the program's start, not from when the keeper saw it)."""
    program = await build(isolated, language("cpp"), SLEEP_FOREVER["cpp"])
    assert isinstance(program, Program), program
    held = FAST.wall_time_s + 1.0
    r, elapsed = await run_with_late_keeper(isolated, program, hold_s=held)
    assert r.timed_out and verdict(r, "cpp") is Verdict.TIME_LIMIT_EXCEEDED, r
    assert r.wall_ms >= held * 1000, r
    assert elapsed < held + MARGIN_S, elapsed


async def test_compile_error_is_reported_with_the_compiler_message(sandbox: Sandbox) -> None:
    bad = await build(sandbox, language("cpp"), "int main() { return x; }\n")
    assert not isinstance(bad, Program) and "was not declared" in bad.message
    bad = await build(sandbox, language("javascript"), "function (\n")
    assert not isinstance(bad, Program) and "SyntaxError" in bad.message
    bad = await build(sandbox, language("python"), "def f(:\n")
    assert not isinstance(bad, Program) and "SyntaxError" in bad.message


async def test_the_program_runs_as_an_unprivileged_uid_of_its_slot(sandbox: Sandbox) -> None:
    code = "import os\nprint(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
    r, _ = await run(sandbox, "python", code)
    uid, euid, gid, groups = r.stdout.decode().split(maxsplit=3)
    assert int(uid) == int(euid) == int(gid) and UID_BASE <= int(uid) < UID_BASE + SLOTS and groups.strip() == "[]"


# ----------------------------------------------------------------------------- hostile programs

FORK_BOMB = {
    "python": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "cpp": "#include <unistd.h>\nint main(){ while(true) fork(); }\n",
    "javascript": "const cp=require('child_process');\nwhile(true){try{cp.spawn(process.execPath,['-e','for(;;);'])}catch(e){}}\n",
}


@pytest.mark.parametrize("lang", sorted(FORK_BOMB))
async def test_fork_bomb_is_contained(sandbox: Sandbox, lang: str) -> None:
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
async def test_memory_bomb_is_memory_limit(sandbox: Sandbox, lang: str) -> None:
    r, elapsed = await run(sandbox, lang, MEMORY_BOMB[lang])
    assert verdict(r, lang) is Verdict.MEMORY_LIMIT_EXCEEDED, (r.exit_code, r.signal, r.stderr[-300:])
    assert elapsed < FAST.wall_time_s + MARGIN_S


async def test_huge_single_allocation_is_memory_limit(sandbox: Sandbox) -> None:
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
async def test_infinite_loop_hits_cpu_limit(sandbox: Sandbox, lang: str) -> None:
    # A wall limit well above the CPU limit: on a machine busy with other work the loop gets
    # less than a core, and FAST's 2 s of wall could end it before its 1 s of CPU (a wall-time
    # verdict, which is not what this test is about).
    limits = replace(FAST, wall_time_s=10)
    r, elapsed = await run(sandbox, lang, INFINITE_LOOP[lang], limits)
    assert r.cpu_limit_hit and not r.timed_out and verdict(r, lang, limits) is Verdict.TIME_LIMIT_EXCEEDED
    assert r.cpu_ms >= 900
    assert elapsed < limits.wall_time_s, elapsed


SLEEP_FOREVER = {
    "python": "import time\ntime.sleep(1000)\n",
    "cpp": "#include <unistd.h>\nint main(){ sleep(1000); }\n",
    "javascript": "setTimeout(() => {}, 1e9);\n",
}


@pytest.mark.parametrize("lang", sorted(SLEEP_FOREVER))
async def test_sleep_forever_hits_wall_limit(sandbox: Sandbox, lang: str) -> None:
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
async def test_gigabyte_of_output_is_cut_quickly(sandbox: Sandbox, lang: str) -> None:
    r, elapsed = await run(sandbox, lang, GIGABYTE_OF_OUTPUT[lang])
    assert r.output_limit_hit and verdict(r, lang) is Verdict.OUTPUT_LIMIT_EXCEEDED
    assert len(r.stdout) <= FAST.output_bytes
    assert elapsed < 2.0, elapsed


async def test_endless_stderr_is_capped_keeping_the_tail(sandbox: Sandbox) -> None:
    r, _ = await run(sandbox, "python", "import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n")
    assert r.output_limit_hit and len(r.stderr) <= 8 * 1024
    code = "import sys\nsys.stderr.write('noise\\n' * 20000)\nraise ValueError('the-last-line')\n"
    r, _ = await run(sandbox, "python", code, RunLimits(cpu_time_s=1, wall_time_s=3, memory_mb=64))
    assert r.exit_code == 1 and r.stderr.rstrip().endswith(b"ValueError: the-last-line")


SECRET = "s3cr3t-" + uuid.uuid4().hex
READ_SECRETS = {
    "python": "import os\nprint(dict(os.environ))\n"
    "for pid in (1, os.getppid()):\n"
    "    try:\n        print(open(f'/proc/{pid}/environ', 'rb').read())\n"
    "    except OSError as e:\n        print('denied', e)\n",
    "javascript": "const fs=require('fs');\nconsole.log(JSON.stringify(process.env));\n"
    "for (const p of [1, process.ppid]) {"
    "try{console.log(fs.readFileSync(`/proc/${p}/environ`,'latin1'))}catch(e){console.log('denied',e.code)}}\n",
}


@pytest.mark.parametrize("lang", sorted(READ_SECRETS))
async def test_environment_and_the_launchers_environ_do_not_leak(
    sandbox: Sandbox, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIBE_SECRET_FOR_TEST", SECRET)
    r, _ = await run(sandbox, lang, READ_SECRETS[lang])
    assert r.ok, r.stderr
    assert SECRET.encode() not in r.stdout and b"VIBE_SECRET_FOR_TEST" not in r.stdout
    assert b"DATABASE_URL" not in r.stdout and b"GEMINI" not in r.stdout


async def test_writing_outside_the_run_directory_fails(sandbox: Sandbox) -> None:
    marker = f"vibe-escape-{uuid.uuid4().hex}"
    targets = [
        f"{Path.cwd()}/{marker}",
        f"/{marker}",
        f"/usr/{marker}",
        f"/etc/{marker}",
        f"/root/{marker}",
        f"/dev/{marker}",
    ]
    code = (
        f"import os\nfor p in {targets!r}:\n    try:\n        open(p, 'w').write('x'); print('wrote', p)\n"
        "    except OSError as e:\n        print('no', p)\nopen('inside.txt', 'w').write('fine')\nprint(os.getcwd())\n"
    )
    r, _ = await run(sandbox, "python", code)
    assert r.ok and b"wrote" not in r.stdout, r.stdout
    assert existing(*targets) == []


async def test_the_problem_bank_beside_the_code_is_out_of_reach(isolated: Sandbox) -> None:
    """A program that knows where the service keeps its problem bank (hidden tests, reference
    solutions) finds nothing there: the bank is not under /usr, the only tree of the host a run
    sees. The service checks this at start (it refuses otherwise: test_sandbox_service.py)."""
    secrets = [str(p) for p in bank_files()]
    assert len(secrets) > 10 and any(p.endswith("reference.py") for p in secrets)
    code = (
        f"import os\nfor p in {secrets[:40]!r}:\n    try:\n        print('read', p, open(p, 'rb').read(20))\n"
        "    except OSError as e:\n        pass\nprint('done')\n"
    )
    r, _ = await run(isolated, "python", code)
    assert r.ok and r.stdout == b"done\n", r.stdout
    assert await isolated.readable_inside(secrets) == []
    # The probe does see what a run can read: the system's own files are readable.
    assert await isolated.readable_inside(["/usr/bin/true", "/etc/shadow", "/root", secrets[0]]) == ["/usr/bin/true"]


async def test_tmp_is_the_run_directory_not_the_hosts(isolated: Sandbox) -> None:
    marker = f"vibe-escape-{uuid.uuid4().hex}"
    code = f"import os\nopen('/tmp/{marker}', 'w').write('x')\nprint(os.listdir('/box'), os.listdir('/'))\n"
    r, _ = await run(isolated, "python", code)
    assert r.ok and marker.encode() in r.stdout, r.stdout
    assert b"'root'" not in r.stdout and b"'home'" not in r.stdout and b"'work'" not in r.stdout  # nothing of the host
    assert existing(f"{tempfile.gettempdir()}/{marker}", f"/tmp/{marker}") == []


async def test_file_size_limit(sandbox: Sandbox) -> None:
    code = "open('big.bin', 'wb').write(b'x' * (4 << 20))\n"
    r, _ = await run(
        sandbox, "python", code, RunLimits(cpu_time_s=1, wall_time_s=3, memory_mb=64, file_size_bytes=1 << 20)
    )
    assert not r.ok and (b"File too large" in r.stderr or r.signal is not None)


@pytest.mark.parametrize("lang", ["python", "javascript"])
async def test_no_network_not_even_loopback(isolated: Sandbox, lang: str) -> None:
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
        r, _ = await run(isolated, lang, code)
        assert b"refused" in r.stdout and b"CONNECTED" not in r.stdout, r.stdout
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


SOCKET_FAMILIES = """
import errno, socket
a, b = socket.socketpair()
a.sendall(b"x")
print("unix", b.recv(1).decode())
print("inet", socket.socket(socket.AF_INET, socket.SOCK_STREAM).family == socket.AF_INET)
# vsock (40) belongs to no network namespace: from a VM's guest it reaches the host and every
# other guest process; packet (17), appletalk (5), key (15), bluetooth (31), alg (38), xdp (44)
for family in (40, 17, 5, 15, 31, 38, 44):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
        try:
            socket.socket(family, kind).close()
            print("OPENED", family, kind)
        except OSError as exc:
            print(family, kind, errno.errorcode.get(exc.errno, exc.errno))
"""


async def test_no_socket_families_beyond_unix_and_ip(sandbox: Sandbox) -> None:
    """Network namespaces do not cover every socket family (vsock, on a VM, goes to the host);
    the filter refuses all but Unix, IP (no interface is up) and netlink, as a kernel without
    them would, in both modes."""
    r, _ = await run(sandbox, "python", SOCKET_FAMILIES)
    assert r.ok, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[:2] == ["unix x", "inet True"], lines
    refused = lines[2:]
    assert len(refused) == 7 * 4 and all(line.endswith(" EAFNOSUPPORT") for line in refused), refused


CRASH_WITH_A_CORE = """
import functools, os, resource, signal
print = functools.partial(print, flush=True)  # the crash comes before any exit-time flush
print("limit", resource.getrlimit(resource.RLIMIT_CORE))
for new in ((0, 0), (0, 1)):
    try:
        resource.setrlimit(resource.RLIMIT_CORE, new)
        print("lowered", new)
    except (OSError, ValueError):  # Python says EPERM from setrlimit as a ValueError
        print("refused")
try:
    resource.prlimit(0, resource.RLIMIT_CORE, (0, 0))
    print("lowered by prlimit")
except OSError as exc:
    print("refused", exc.errno)
print("still", resource.prlimit(0, resource.RLIMIT_CORE))
os.kill(os.getpid(), signal.SIGSEGV)
"""


async def test_a_crash_never_reaches_the_hosts_core_dump_handler(sandbox: Sandbox) -> None:
    """A limit of 0 stops core files only: with a pipe core_pattern (systemd-coredump, apport) the
    kernel runs the host's handler, as root, outside the run.  The run's limit is 1, the kernel's
    "no dump" for both kinds, and the program cannot lower it."""
    r, _ = await run(sandbox, "python", CRASH_WITH_A_CORE)
    assert r.stdout.decode().splitlines() == [
        "limit (1, 1)",
        "refused",
        "refused",
        "refused 1",
        "still (1, 1)",
    ], r.stdout
    assert r.signal == 11 and verdict(r, "python") is Verdict.RUNTIME_ERROR


async def test_kill_stop_own_group_is_a_wall_time_limit(sandbox: Sandbox) -> None:
    r, elapsed = await run(sandbox, "python", "import os, signal\nos.kill(0, signal.SIGSTOP)\n")
    assert verdict(r, "python") is Verdict.TIME_LIMIT_EXCEEDED and r.timed_out
    assert elapsed < FAST.wall_time_s + MARGIN_S


async def test_killing_or_stopping_the_parent_leaves_nothing_behind(sandbox: Sandbox) -> None:
    marker = f"vibe-marker-{uuid.uuid4().hex}"
    code = (
        "import os, signal, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(100)', {marker!r}])\n"
        "for pid in (os.getppid(), 1, -1):\n"
        "    for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "        try:\n            os.kill(pid, sig)\n        except OSError as e:\n            print('cannot', pid, e)\n"
        "time.sleep(100)\n"
    )
    r, elapsed = await run(sandbox, "python", code)
    assert not r.ok
    assert verdict(r, "python") in (Verdict.RUNTIME_ERROR, Verdict.TIME_LIMIT_EXCEEDED)
    assert elapsed < FAST.wall_time_s + MARGIN_S
    assert wait_gone(marker) == []


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
async def test_background_process_is_killed(sandbox: Sandbox, lang: str) -> None:
    marker = f"vibe-marker-{uuid.uuid4().hex}"
    r, elapsed = await run(sandbox, lang, BACKGROUND[lang].replace("MARK", marker))
    assert r.stdout.strip() == b"started", r.stderr
    assert elapsed < FAST.wall_time_s, "did not wait for the background process"
    assert wait_gone(marker) == []


async def test_program_that_closes_stdin_is_fine_and_nothing_is_left_on_disk(sandbox: Sandbox) -> None:
    before = run_dirs()
    big = b"1 " * (2 << 20)  # 4 MiB, more than a pipe buffer
    r, _ = await run(
        sandbox, "python", "import os\nos.close(0)\nopen('scratch', 'w').write('x')\nprint('done')\n", stdin=big
    )
    assert r.exit_code == 0 and r.stdout == b"done\n"
    assert run_dirs() == before


def test_limits_validation() -> None:
    with pytest.raises(ValueError, match="limits must be positive"):
        RunLimits(cpu_time_s=0, wall_time_s=1, memory_mb=64)
    with pytest.raises(ValueError, match="limits must be positive"):
        RunLimits(cpu_time_s=1, wall_time_s=1, memory_mb=64, disk_inodes=0)
