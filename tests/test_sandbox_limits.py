"""The sandbox against programs that go after the grade or the host rather than the answer:
forging the launcher's report (through /proc/<pid>/fd, pidfd_getfd, ptrace, process_vm_readv,
/proc/<pid>/mem), memory spread over many processes or parked in /dev/shm and tmpfs, the run
directory filled with bytes or inodes, and cleanup traps (20,000-level trees, odd permissions,
symlinks).  Each ends in the right verdict (never accepted), within the run's bounds, with
nothing left behind and the sandbox still working.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.sandboxes import FAST, MARGIN_S, existing, run, run_dirs, verdict
from vibe.services.scoring.judge import Verdict
from vibe.services.scoring.languages import language
from vibe.services.scoring.programs import Program, build, execute
from vibe.services.scoring.sandbox import FilesTooLarge, RunLimits, Sandbox

FAKE_REPORT = "R exit=0 signal=-1 cpu_us=1 wall_us=1 maxrss_kb=1 oom_kills=0 timed_out=0 cpu_limit=0 stopped=0\\n"


async def assert_still_works(sandbox: Sandbox) -> None:
    r, _ = await run(sandbox, "python", "print(6 * 7)\n")
    assert r.ok and r.stdout == b"42\n", r


def _slot_memory_peaks(sandbox: Sandbox) -> list[int]:
    peaks = []
    for slot in sandbox._slots:  # the test looks at the host's side of the run's cgroup
        assert slot.cgroup is not None
        memory = slot.cgroup.dirs.get("memory") or slot.cgroup.dirs[""]
        name = "memory.max_usage_in_bytes" if (memory / "memory.max_usage_in_bytes").exists() else "memory.peak"
        peaks.append(int((memory / name).read_text()))
    return peaks


# ----------------------------------------------------------------------------- forging the report

FORGE_THROUGH_PROC_FD = f"""
import glob, os, sys
print(10, flush=True)
fake = "{FAKE_REPORT}".encode()
hits = []
for pid in sorted({{1, os.getppid()}}):
    for path in glob.glob(f"/proc/{{pid}}/fd/*"):
        try:
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, fake)
            hits.append(path)
        except OSError:
            pass
for fd in range(3, 1024):
    try:
        os.write(fd, fake)
        hits.append(fd)
    except OSError:
        pass
print("forged", hits, file=sys.stderr, flush=True)
while True:
    pass
"""

FORGE_THROUGH_PIDFD_GETFD = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
print(10, flush=True)
got = []
for pid in sorted({1, os.getppid()}):
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        got.append((pid, "pidfd_open", exc.errno))
        continue
    for target in range(0, 64):
        fd = libc.syscall(438, pidfd, target, 0)  # pidfd_getfd
        if fd >= 0:
            got.append((pid, target, "STOLEN"))
print("pidfd_getfd", got, file=sys.stderr, flush=True)
while True:
    pass
"""

FORGE_THROUGH_PTRACE_CPP = r"""
#include <cstdio>
#include <cstring>
#include <cerrno>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>
int main() {
    std::printf("10\n");
    std::fflush(stdout);
    pid_t targets[2] = {1, getppid()};
    for (pid_t pid : targets) {
        long a = ptrace(PTRACE_ATTACH, pid, 0, 0);
        std::fprintf(stderr, "ptrace attach %d: %ld %s\n", pid, a, std::strerror(errno));
        long s = ptrace(PTRACE_SEIZE, pid, 0, 0);
        std::fprintf(stderr, "ptrace seize %d: %ld %s\n", pid, s, std::strerror(errno));
        char buf[64];
        struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
        long r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        std::fprintf(stderr, "process_vm_readv %d: %ld %s\n", pid, r, std::strerror(errno));
        long w = process_vm_writev(pid, &local, 1, &remote, 1, 0);
        std::fprintf(stderr, "process_vm_writev %d: %ld %s\n", pid, w, std::strerror(errno));
        char path[64];
        std::snprintf(path, sizeof path, "/proc/%d/mem", pid);
        int fd = open(path, O_RDWR);
        std::fprintf(stderr, "open %s: %d %s\n", path, fd, std::strerror(errno));
        kill(pid, SIGSTOP);
    }
    volatile unsigned long x = 0;
    while (true) x++;
}
"""


@pytest.mark.parametrize(
    ("lang", "source"),
    [("python", FORGE_THROUGH_PROC_FD), ("python", FORGE_THROUGH_PIDFD_GETFD), ("cpp", FORGE_THROUGH_PTRACE_CPP)],
    ids=["proc-fd", "pidfd_getfd", "ptrace-vm-mem"],
)
async def test_the_program_cannot_forge_its_report(sandbox: Sandbox, lang: str, source: str) -> None:
    """It prints the right answer, tries to write or steal the launcher's report, then spins past
    the CPU limit: the verdict is the time limit, with the CPU time it really used."""
    r, elapsed = await run(sandbox, lang, source, stdin=b"1 2 3 4\n")
    assert r.stdout == b"10\n"
    assert verdict(r, lang) is Verdict.TIME_LIMIT_EXCEEDED and r.cpu_limit_hit, (r, r.stderr[-600:])
    assert r.cpu_ms >= 0.9 * FAST.cpu_time_s * 1000, r.cpu_ms
    assert elapsed < FAST.wall_time_s + MARGIN_S
    stderr = r.stderr.decode()
    if source is FORGE_THROUGH_PROC_FD:
        assert "forged []" in stderr, stderr  # no descriptor of the launcher could be written
    elif source is FORGE_THROUGH_PIDFD_GETFD:
        assert "pidfd_getfd" in stderr and "STOLEN" not in stderr, stderr
    else:
        probes = stderr.splitlines()
        assert len(probes) == 10 and all(": -1 " in line for line in probes), stderr  # every probe failed
    await assert_still_works(sandbox)


# ----------------------------------------------------------------------------- whole-run memory

MANY_PROCESSES = """
import os, time
kids = []
for i in range(8):
    pid = os.fork()
    if pid == 0:
        block = bytearray(20 << 20)        # each one well under the run's 64 MB
        for j in range(0, len(block), 4096):
            block[j] = 1
        time.sleep(1.5)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("all done")
"""


async def test_memory_of_many_processes_is_bounded_as_a_whole(isolated: Sandbox) -> None:
    r, elapsed = await run(isolated, "python", MANY_PROCESSES, RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=64))
    assert r.memory_limit_hit and verdict(r, "python") is Verdict.MEMORY_LIMIT_EXCEEDED, r
    assert elapsed < 4 + MARGIN_S
    assert max(_slot_memory_peaks(isolated)) <= (64 + 16 + 8) << 20  # program + runtime + the slot's own
    await assert_still_works(isolated)


FILL_SHM = """
import os
written = 0
try:
    with open("/dev/shm/fill", "wb") as fh:
        for _ in range(400):
            fh.write(b"x" * (1 << 20))
            fh.flush()
            written += 1
except OSError as exc:
    print("stopped", exc.errno)
print("written MB", written)
"""


SHM_THEN_HEAP = """
import sys
if sys.argv[1] == "shm":
    with open("/dev/shm/parked", "wb") as fh:
        fh.write(b"x" * (20 << 20))
heap = bytearray(70 << 20)
for i in range(0, len(heap), 4096):
    heap[i] = 1
print("fits")
"""


async def test_shared_memory_counts_against_the_run_memory(isolated: Sandbox) -> None:
    """70 MB of heap fits the run's memory (64 MB + the runtime's 16 MB); 20 MB parked in
    /dev/shm first does not: those pages are the run's memory too."""
    program = await build(isolated, language("python"), SHM_THEN_HEAP)
    assert isinstance(program, Program), program
    limits = RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=64, file_size_bytes=1 << 30)
    heap_only = await execute(isolated, program, b"", limits, args=("heap",))
    assert heap_only.ok and heap_only.stdout == b"fits\n", heap_only
    with_shm = await execute(isolated, program, b"", limits, args=("shm",))
    assert with_shm.memory_limit_hit and verdict(with_shm, "python", limits) is Verdict.MEMORY_LIMIT_EXCEEDED
    assert max(_slot_memory_peaks(isolated)) <= (64 + 16 + 8) << 20
    await assert_still_works(isolated)


FILL_EVERYTHING_CPP = r"""
#include <cstdio>
#include <cerrno>
#include <string>
int main() {
    std::string block(1 << 16, 'x');
    long total = 0;
    for (const char* dir : {"/dev/shm", "/box"}) {
        for (int i = 0;; i++) {
            std::string path = std::string(dir) + "/f" + std::to_string(i);
            FILE* f = std::fopen(path.c_str(), "wb");
            if (!f) break;
            size_t wrote = std::fwrite(block.data(), 1, block.size(), f);
            bool full = std::fclose(f) != 0 || wrote < block.size();
            total += wrote;
            if (full) break;
        }
    }
    std::printf("parked %ld MB\n", total >> 20);
}
"""


async def test_a_run_that_parks_all_it_can_in_tmpfs_still_gets_its_report(isolated: Sandbox) -> None:
    """/box and /dev/shm filled to the last byte, then a normal exit: the pages stay charged
    to the run until its namespace goes, and the sandbox still reports (room is kept for it)."""
    limits = RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=64, file_size_bytes=1 << 30, disk_bytes=1 << 30)
    r, _ = await run(isolated, "cpp", FILL_EVERYTHING_CPP, limits)
    assert r.exit_code == 0 and r.stdout.startswith(b"parked "), r
    assert int(r.stdout.split()[1]) <= 64 + 8  # /box and /dev/shm together within the program's memory
    await assert_still_works(isolated)


SYSV_IPC = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
IPC_PRIVATE, IPC_CREAT = 0, 0o1000
print("shmget", libc.shmget(IPC_PRIVATE, 64 << 20, IPC_CREAT | 0o600), ctypes.get_errno())
print("msgget", libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600), ctypes.get_errno())
print("semget", libc.semget(IPC_PRIVATE, 1, IPC_CREAT | 0o600), ctypes.get_errno())
"""


async def test_system_v_ipc_is_refused(isolated: Sandbox) -> None:
    """Its objects would outlive the program (and hold memory) until the run's end."""
    r, _ = await run(isolated, "python", SYSV_IPC)
    assert r.ok and r.stdout.decode().split("\n")[:3] == ["shmget -1 1", "msgget -1 1", "semget -1 1"], r.stdout


async def test_shared_memory_and_tmpfs_are_bounded_in_size(isolated: Sandbox) -> None:
    limits = RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=256, disk_bytes=16 << 20, file_size_bytes=1 << 30)
    r, _ = await run(isolated, "python", FILL_SHM, limits)
    assert r.ok and b"stopped 28" in r.stdout, r  # ENOSPC at 16 MB
    assert int(r.stdout.split()[-1]) <= 16
    r, _ = await run(isolated, "python", FILL_SHM.replace("/dev/shm/fill", "/tmp/fill"), limits)
    assert r.ok and b"stopped 28" in r.stdout and int(r.stdout.split()[-1]) <= 16, r


# ----------------------------------------------------------------------------- the run's directory

MANY_MEGABYTE_FILES = """
n = 0
try:
    while True:
        with open(f"f{n}", "wb") as fh:
            fh.write(b"x" * (1 << 20))
        n += 1
except OSError as exc:
    print("stopped", exc.errno, n)
"""

MANY_INODES = {
    "python": "import os\nn = 0\ntry:\n    while True:\n        open(f'i{n}', 'w').close()\n        n += 1\n"
    "except OSError as exc:\n    print('stopped', exc.errno, n)\n",
    "cpp": "#include <cstdio>\n#include <cerrno>\n#include <fcntl.h>\n#include <unistd.h>\nint main(){ long n = 0; char p[32];"
    ' while (true) { std::snprintf(p, sizeof p, "i%ld", n); int fd = open(p, O_CREAT | O_WRONLY, 0600);'
    ' if (fd < 0) { std::printf("stopped %d %ld\\n", errno, n); return 0; } close(fd); n++; } }\n',
}


async def test_input_files_larger_than_the_run_directory_are_refused_before_running(sandbox: Sandbox) -> None:
    """The caller's files against the caller's limits: a clear refusal before anything runs, in
    both modes, never a sandbox failure (which would be retried and take the service's health down)."""
    limits = RunLimits(cpu_time_s=1, wall_time_s=2, memory_mb=64, disk_bytes=4 << 20, disk_inodes=8)
    argv = [language("python").run_argv(64)[0], "-c", "print('ran')"]
    with pytest.raises(FilesTooLarge, match=r"take 5242880 bytes and 2 inodes; its directory holds 4194304 bytes"):
        await sandbox.run({"data": b"x" * (5 << 20)}, argv, b"", limits)
    with pytest.raises(FilesTooLarge, match="9 inodes"):
        await sandbox.run({f"f{i}": b"" for i in range(8)}, argv, b"", limits)
    r = await sandbox.run({"data": b"x" * (4 << 20)}, argv, b"", limits)  # exactly full is fine
    assert r.ok and r.stdout == b"ran\n", r
    await assert_still_works(sandbox)


async def test_run_directory_is_bounded_in_bytes(isolated: Sandbox) -> None:
    limits = RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=256, disk_bytes=24 << 20)
    r, _ = await run(isolated, "python", MANY_MEGABYTE_FILES, limits)
    assert r.ok and r.stdout.startswith(b"stopped 28"), r
    assert int(r.stdout.split()[-1]) <= 24
    await assert_still_works(isolated)


@pytest.mark.parametrize("lang", sorted(MANY_INODES))
async def test_run_directory_is_bounded_in_inodes(isolated: Sandbox, lang: str) -> None:
    limits = RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=128, disk_inodes=500)
    r, _ = await run(isolated, lang, MANY_INODES[lang], limits)
    assert r.ok and r.stdout.startswith(b"stopped 28"), r
    assert int(r.stdout.split()[-1]) < 500
    await assert_still_works(isolated)


DEEP_TREE_AND_TRAPS = """
import os
os.mkdir("locked")
open("locked/file", "w").write("x")
os.symlink("/etc", "link-to-etc")
os.symlink("/", "link-to-root")
for depth in range(20000):
    os.mkdir("d")
    os.chdir("d")
open("bottom", "w").write("x")
os.chmod(".", 0o000)
os.chdir("/box" if os.path.isdir("/box") else os.environ["HOME"])
os.chmod("locked", 0o000)
print("built")
"""


async def test_deep_trees_and_odd_permissions_leave_nothing_behind(sandbox: Sandbox) -> None:
    limits = RunLimits(cpu_time_s=10, wall_time_s=20, memory_mb=256, disk_inodes=30000)
    before = run_dirs()
    r, _ = await run(sandbox, "python", DEEP_TREE_AND_TRAPS, limits)
    assert r.ok and r.stdout == b"built\n", r
    assert run_dirs() == before  # (rlimits mode: a host directory)
    assert existing("/etc/passwd", "/usr/bin") == ["/etc/passwd", "/usr/bin"]  # the symlinks were not followed
    await assert_still_works(sandbox)


def test_the_host_directory_remover_handles_what_a_program_leaves(tmp_path: Path) -> None:
    from vibe.services.scoring.sandbox import remove_tree

    top = tmp_path / "run"
    deep = top
    deep.mkdir()
    (top / "outside").symlink_to(tmp_path)
    keep = tmp_path / "keep.txt"
    keep.write_text("keep me")
    path = os.open(top, os.O_RDONLY)
    try:
        for _ in range(20000):
            os.mkdir("d", dir_fd=path)
            child = os.open("d", os.O_RDONLY, dir_fd=path)
            os.close(path)
            path = child
        os.chmod(path, 0)
    finally:
        os.close(path)
    try:
        remove_tree(str(top))
        assert not top.exists() and keep.read_text() == "keep me"
    finally:  # whatever happened, no 20,000-level tree for pytest's own (recursive) cleanup
        subprocess.run(["rm", "-rf", str(top)], check=False)


ESCAPE_SYSCALLS_CPP = r"""
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <csignal>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
int main() {
    std::printf("unshare %d\n", unshare(CLONE_NEWUSER | CLONE_NEWNS) == -1 ? errno : 0);
    std::printf("mount %d\n", mount("none", "/box", "tmpfs", 0, nullptr) == -1 ? errno : 0);
    std::printf("chroot %d\n", chroot("/box") == -1 ? errno : 0);
    std::printf("setuid %d\n", setuid(0) == -1 ? errno : 0);
    long pid = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
    if (pid == 0) _exit(0);
    std::printf("clone %d\n", pid == -1 ? errno : 0);
}
"""


async def test_no_new_namespaces_mounts_or_privileges(isolated: Sandbox) -> None:
    r, _ = await run(isolated, "cpp", ESCAPE_SYSCALLS_CPP)
    assert r.ok, r
    results = dict(line.split() for line in r.stdout.decode().splitlines())
    assert all(code != "0" for code in results.values()), results  # every one refused
    assert set(results) == {"unshare", "mount", "chroot", "setuid", "clone"}
