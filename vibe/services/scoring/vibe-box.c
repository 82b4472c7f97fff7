/*
 * vibe-box: run untrusted programs in a sandbox and report, from outside the programs' reach,
 * what they did.  Built by `make setup` (cc -O2 -static); started by the scoring service
 * (vibe/services/scoring/sandbox.py), one per worker slot, as a small pre-forked server.
 *
 * Processes of one isolated run:
 *
 *   service ==socket==> slot server (root; joined the slot's cgroups once, at start)
 *                          | fork                                   (per run, from here on)
 *                          v
 *                        keeper (root, host namespaces; watches the limits, writes the report)
 *                          | clone(NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS|NEWCGROUP)
 *                          v
 *                        proxy (root, PID 1 of the run; builds the root file system, reaps, collects)
 *                          | fork, rlimits, drop to the slot's uid, no_new_privs, seccomp, execve
 *                          v
 *                        the candidate (unprivileged uid, sees only /usr, /box, /dev, its /proc)
 *
 * Why a server per slot: moving a process into a cgroup v1 hierarchy waits for an RCU grace
 * period (~20 ms measured here, per run); a child is born in its parent's cgroup for free.  So
 * the server joins the slot's cgroups once and every process of every run starts inside them.
 *
 * Why the measurements cannot be forged: everything that decides a verdict (the exit status, the
 * CPU time, the out-of-memory kills, the wall clock) is read by the keeper or the proxy, which run
 * as root under another uid than the candidate.  The keeper is not even in the candidate's PID
 * namespace; the proxy is its init, non-dumpable and hidden by /proc's hidepid=2.  So the
 * candidate cannot signal, ptrace, process_vm_readv, open /proc/<pid>/{fd,mem} of, or pidfd_getfd
 * from either, and neither hands it a descriptor: it starts with stdin, stdout and stderr only.
 * CPU time is the cgroup's (every process and thread of the run) from just before the program is
 * started (read by the proxy, not when the keeper gets round to it), not a number the program's
 * process tree reports about itself.  The seccomp filter is a
 * second wall: no ptrace, process_vm_*, pidfd_getfd, new namespaces, mount, bpf, perf, io_uring,
 * keyctl, System V IPC, POSIX message queues, sockets but Unix, IP and netlink (vsock, for one,
 * is in no network namespace), or a lower core dump limit (a crash never reaches the host's
 * core dump handler).  The server, keeper and proxy have oom_score_adj -1000 and the candidate +1000, so an
 * out-of-memory kill in the run's cgroup always hits the candidate.
 *
 * Whole-run limits: memory (including tmpfs and shared memory pages) and the number of
 * processes/threads are the slot cgroup's limits, set by the service before each run; CPU is the
 * cgroup's usage, polled here; /box and /dev/shm are tmpfs mounts with a size and an inode limit
 * inside the run's own mount namespace, so nothing of a run touches the host's disk and
 * everything vanishes with the namespace.
 *
 * Mode "rlimits" (development only, chosen explicitly by the operator): no namespaces and no
 * cgroups; the keeper forks the candidate itself (as a child subreaper) in a host directory, with
 * rlimits, the same seccomp filter and, as root, the uid drop.
 *
 * Protocol.  `vibe-box serve --sock-fd=N --mode=... [--cg-procs=F]... [--cg-cpu=F] [--cg-oom=F]`
 * reads requests from fd N (a SOCK_SEQPACKET socket): one message of NUL-separated "--key=value"
 * options, "--", then the program's argv; with it, six descriptors: stdin, stdout, stderr,
 * files, report, control.  It answers "ready\n" once it has joined the cgroups.  The files
 * descriptor carries the run's input files: "F <octal mode> <size> <name>\n" + bytes, ..., "E\n".
 * The report descriptor gets the collected files ("F <size> <name>\n" + bytes) and one final line:
 * "R key=value ..." (the run's outcome) or "X <message>" (the sandbox itself failed: never the
 * candidate's fault).  Anything readable on the control descriptor (or its EOF) stops the run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define MAX_LIST 32
#define MAX_REQUEST (256 * 1024)
#define MAX_FILE_BYTES (256LL << 20)
#define BOX "/box"
/* Where the slot server builds the runs' root, inside its private mount namespace. */
#define NEWROOT "/tmp"
/* Descriptors of a run, as the keeper holds them. */
enum { FD_FILES = 3, FD_REPORT = 4, FD_CONTROL = 5, FD_FIRST_FREE = 6 };

struct config {
    /* the slot's, from `serve` */
    int isolated;
    const char *cg_procs[MAX_LIST];
    int n_cg_procs;
    const char *cg_cpu; /* cpuacct.usage (ns) or cpu.stat (usage_usec) */
    const char *cg_oom; /* memory.oom_control (v1) or memory.events (v2): "oom_kill N" */
    int sock_fd;
    int cg_cpu_fd, cg_oom_fd; /* opened once by the server: the keeper cannot see cgroupfs */
    int ncpu;
    const char *ro[MAX_LIST]; /* extra read-only host directories in the runs' root */
    int n_ro;
    /* the run's, from its request */
    int drop;
    uid_t uid;
    gid_t gid;
    long long cpu_ms, wall_ms;
    long long rl_cpu_s, rl_as, rl_fsize, rl_nproc, rl_nofile, rl_stack;
    long long box_bytes, box_inodes, shm_bytes;
    const char *workdir;
    const char *collect[MAX_LIST];
    int n_collect;
    long long collect_max;
    char *env[MAX_LIST + 1];
    int n_env;
    char **argv;
};

static struct config C = {.sock_fd = -1, .cg_cpu_fd = -1, .cg_oom_fd = -1, .ncpu = 1};

/* ------------------------------------------------------------------ small utilities */

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Report an infrastructure failure on `fd` (one "X" line) and exit. */
static void fail_to(int fd, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail_to(int fd, const char *fmt, ...) {
    char msg[1024], line[1100];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n >= (int)sizeof msg) n = (int)sizeof msg - 1;
    for (int i = 0; i < n; i++)
        if (msg[i] == '\n') msg[i] = ' ';
    int m = snprintf(line, sizeof line, "X %.*s\n", n, msg);
    write_all(fd >= 0 ? fd : 2, line, (size_t)m);
    _exit(3);
}

static int read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = pread(fd, buf, cap - 1, 0);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

/* A counter from a cgroup file: the first number, or the number after "<key> " when key is set. */
static long long read_counter(int fd, const char *key) {
    char buf[4096];
    if (fd < 0) return -1;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n < 0) return -1;
    buf[n] = 0;
    if (!key) return strtoll(buf, NULL, 10);
    size_t klen = strlen(key);
    for (char *line = buf; line && *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ') return strtoll(line + klen + 1, NULL, 10);
        line = strchr(line, '\n');
        if (line) line++;
    }
    return 0; /* key absent: nothing counted yet */
}

/* CPU time of the slot's cgroup in microseconds (v1 cpuacct.usage is ns; v2 cpu.stat usage_usec). */
static long long cgroup_cpu_us(void) {
    if (C.cg_cpu_fd < 0) return -1;
    if (strstr(C.cg_cpu, "cpu.stat")) return read_counter(C.cg_cpu_fd, "usage_usec");
    long long ns = read_counter(C.cg_cpu_fd, NULL);
    return ns < 0 ? -1 : ns / 1000;
}

static long long cgroup_oom_kills(void) { return C.cg_oom_fd >= 0 ? read_counter(C.cg_oom_fd, "oom_kill") : 0; }

static void set_oom_score_adj(const char *value) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        write_all(fd, value, strlen(value));
        close(fd);
    }
}

/* ------------------------------------------------------------------ arguments */

static int number(const char *v, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < 0) return -1;
    *out = x;
    return 0;
}

/* Options of `serve` (slot-wide) and of each request (per run), in one parser. */
static void parse_options(char **argv, int argc, int per_run) {
    int i = 0;
    for (; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0 || !eq) fail_to(FD_REPORT, "bad option %s", a);
        *eq = 0;
        const char *k = a + 2, *v = eq + 1;
        long long x = 0;
        int isnum = number(v, &x) == 0;
#define NUM(name, field) else if (!strcmp(k, name)) { if (!isnum) fail_to(FD_REPORT, "bad number for --%s", k); field = x; }
        if (!per_run && !strcmp(k, "mode")) {
            if (!strcmp(v, "isolated")) C.isolated = 1;
            else if (!strcmp(v, "rlimits")) C.isolated = 0;
            else fail_to(-1, "unknown mode %s", v);
        } else if (!per_run && !strcmp(k, "cg-procs") && C.n_cg_procs < MAX_LIST) C.cg_procs[C.n_cg_procs++] = v;
        else if (!per_run && !strcmp(k, "cg-cpu")) C.cg_cpu = v;
        else if (!per_run && !strcmp(k, "cg-oom")) C.cg_oom = v;
        else if (!per_run && !strcmp(k, "sock-fd")) {
            if (!isnum) fail_to(-1, "bad --sock-fd");
            C.sock_fd = (int)x;
        }
        else if (per_run && !strcmp(k, "uid")) {
            if (!isnum) fail_to(FD_REPORT, "bad uid");
            C.uid = (uid_t)x;
            C.drop = 1;
        }
        NUM("gid", C.gid)
        NUM("cpu-ms", C.cpu_ms)
        NUM("wall-ms", C.wall_ms)
        NUM("rlimit-cpu", C.rl_cpu_s)
        NUM("rlimit-as", C.rl_as)
        NUM("rlimit-fsize", C.rl_fsize)
        NUM("rlimit-nproc", C.rl_nproc)
        NUM("rlimit-nofile", C.rl_nofile)
        NUM("rlimit-stack", C.rl_stack)
        NUM("box-bytes", C.box_bytes)
        NUM("box-inodes", C.box_inodes)
        NUM("shm-bytes", C.shm_bytes)
        NUM("collect-max", C.collect_max)
        else if (per_run && !strcmp(k, "workdir")) C.workdir = v;
        else if (per_run && !strcmp(k, "collect") && C.n_collect < MAX_LIST) C.collect[C.n_collect++] = v;
        else if (!per_run && !strcmp(k, "ro") && C.n_ro < MAX_LIST) C.ro[C.n_ro++] = v;
        else if (per_run && !strcmp(k, "env") && C.n_env < MAX_LIST) C.env[C.n_env++] = (char *)v;
        else fail_to(per_run ? FD_REPORT : -1, "unknown option --%s", k);
#undef NUM
    }
    if (!per_run) return;
    C.env[C.n_env] = NULL;
    if (i >= argc) fail_to(FD_REPORT, "no program to run");
    C.argv = argv + i;
    if (C.wall_ms <= 0) fail_to(FD_REPORT, "--wall-ms is required");
    if (C.isolated && (!C.drop || C.uid == 0)) fail_to(FD_REPORT, "isolated runs need --uid of an unprivileged user");
    if (!C.isolated && !C.workdir) fail_to(FD_REPORT, "rlimits runs need --workdir");
    for (int k = 0; k < C.n_collect; k++)
        if (!*C.collect[k] || strchr(C.collect[k], '/') || !strcmp(C.collect[k], ".") || !strcmp(C.collect[k], ".."))
            fail_to(FD_REPORT, "bad file name to collect");
}

/* ------------------------------------------------------------------ seccomp */

#if defined(__x86_64__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_AARCH64
#else
#error "vibe-box: unsupported architecture (add its AUDIT_ARCH and system calls)"
#endif

#define DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
#define NOSYS(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS)

static int install_seccomp(void) {
    const uint32_t ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                              CLONE_NEWCGROUP | CLONE_NEWTIME;
    struct sock_filter filter[] = {
        /* Another ABI (i386 int 0x80, x32) could bypass a filter written for this one: kill. */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_SELF, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
        /* clone: threads and processes yes, new namespaces no (the flags are its first argument). */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, ns_flags, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* socket, socketpair: Unix, IP and netlink only (the family is their first argument).  The
         * run's network namespace has no interface up, but not every family belongs to a network
         * namespace: vsock, on a VM, reaches the host and every guest process, whatever the run's
         * namespace.  EAFNOSUPPORT, as from a kernel without the family, for all the others. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socketpair, 0, 7),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* RLIMIT_CORE stays 1 (see become_candidate): no setrlimit of it, no prlimit64 that sets it
         * (getting it is fine: a NULL new limit, the third argument, both halves zero). */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setrlimit, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RLIMIT_CORE, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prlimit64, 0, 8),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RLIMIT_CORE, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* clone3 hides its flags behind a pointer, io_uring does its work behind our back:
         * ENOSYS makes libc and runtimes (libuv) fall back to the plain system calls. */
        NOSYS(__NR_clone3), NOSYS(__NR_io_uring_setup), NOSYS(__NR_io_uring_enter), NOSYS(__NR_io_uring_register),
        DENY(__NR_ptrace), DENY(__NR_process_vm_readv), DENY(__NR_process_vm_writev), DENY(__NR_kcmp),
        DENY(__NR_pidfd_getfd), DENY(__NR_unshare), DENY(__NR_setns), DENY(__NR_mount), DENY(__NR_umount2),
        DENY(__NR_pivot_root), DENY(__NR_chroot), DENY(__NR_bpf), DENY(__NR_perf_event_open),
        DENY(__NR_userfaultfd), DENY(__NR_keyctl), DENY(__NR_add_key), DENY(__NR_request_key),
        DENY(__NR_kexec_load), DENY(__NR_kexec_file_load), DENY(__NR_init_module), DENY(__NR_finit_module),
        DENY(__NR_delete_module), DENY(__NR_reboot), DENY(__NR_swapon), DENY(__NR_swapoff), DENY(__NR_acct),
        DENY(__NR_quotactl), DENY(__NR_open_by_handle_at), DENY(__NR_name_to_handle_at), DENY(__NR_syslog),
        DENY(__NR_fanotify_init), DENY(__NR_move_mount), DENY(__NR_open_tree), DENY(__NR_fsopen),
        DENY(__NR_fsmount), DENY(__NR_fspick), DENY(__NR_mount_setattr), DENY(__NR_settimeofday),
        DENY(__NR_clock_settime), DENY(__NR_clock_adjtime), DENY(__NR_adjtimex), DENY(__NR_sethostname),
        DENY(__NR_setdomainname), DENY(__NR_vhangup),
        /* System V IPC and POSIX message queues: their objects outlive the processes that made
         * them (until the run's IPC namespace goes, with its init), so memory parked there would
         * still be charged to the run after the program is gone. Programs use /dev/shm instead. */
        DENY(__NR_shmget), DENY(__NR_shmat), DENY(__NR_shmctl), DENY(__NR_msgget), DENY(__NR_msgsnd),
        DENY(__NR_msgrcv), DENY(__NR_msgctl), DENY(__NR_semget), DENY(__NR_semop), DENY(__NR_semtimedop),
        DENY(__NR_semctl), DENY(__NR_mq_open), DENY(__NR_mq_timedsend), DENY(__NR_mq_timedreceive),
        DENY(__NR_mq_notify), DENY(__NR_mq_getsetattr), DENY(__NR_mq_unlink),
#if defined(__x86_64__)
        DENY(__NR_iopl), DENY(__NR_ioperm), DENY(__NR_uselib), DENY(__NR_lookup_dcookie),
#endif
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof filter / sizeof filter[0]), .filter = filter};
    return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* ------------------------------------------------------------------ the candidate */

static void set_limit(int res, long long soft, long long hard) {
    struct rlimit rl = {.rlim_cur = (rlim_t)soft, .rlim_max = (rlim_t)hard};
    setrlimit(res, &rl); /* best effort: a lower hard limit set by the operator stays */
}

/* In the forked child: become the candidate.  A failure goes to err_fd as (errno, step). */
static void become_candidate(int err_fd, int workdir_fd) __attribute__((noreturn));
static void become_candidate(int err_fd, int workdir_fd) {
    int step = 0;
#define STEP(cond)                    \
    do {                              \
        step++;                       \
        if (!(cond)) goto fail;       \
    } while (0)
    STEP(setsid() >= 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    /* First in line for the OOM killer (raising it needs no privilege, lowering it back would). */
    set_oom_score_adj("1000");
    if (C.rl_cpu_s > 0) set_limit(RLIMIT_CPU, C.rl_cpu_s, C.rl_cpu_s + 1);
    if (C.rl_as > 0) set_limit(RLIMIT_AS, C.rl_as, C.rl_as);
    if (C.rl_fsize > 0) set_limit(RLIMIT_FSIZE, C.rl_fsize, C.rl_fsize);
    if (C.rl_nofile > 0) set_limit(RLIMIT_NOFILE, C.rl_nofile, C.rl_nofile);
    if (C.rl_stack > 0) set_limit(RLIMIT_STACK, C.rl_stack, C.rl_stack);
    /* No core dump, whatever the host's core_pattern: a limit of 0 stops a core file, but a pipe
     * pattern (systemd-coredump, apport) ignores the limit and runs the host's handler, as root,
     * outside the run, which may store the dump on the host's disk.  1 is the kernel's "no dump"
     * for both (below a core file's minimum size; aborted for a pipe); the seccomp filter keeps
     * the program from lowering it to 0. */
    set_limit(RLIMIT_CORE, 1, 1);
    set_limit(RLIMIT_MEMLOCK, 0, 0);
    set_limit(RLIMIT_MSGQUEUE, 0, 0);
    /* RLIMIT_NPROC counts the real uid's processes host-wide: meaningful with a uid per slot. */
    if (C.rl_nproc > 0 && C.drop) set_limit(RLIMIT_NPROC, C.rl_nproc, C.rl_nproc);
    STEP(C.isolated ? chdir(BOX) == 0 : fchdir(workdir_fd) == 0);
    if (C.drop) {
        STEP(setgroups(0, NULL) == 0);
        STEP(setresgid(C.gid, C.gid, C.gid) == 0);
        STEP(setresuid(C.uid, C.uid, C.uid) == 0);
        STEP(setuid(0) != 0 && getuid() == C.uid && geteuid() == C.uid);
    }
    /* Cleared by the uid change above, hence set after it: the candidate dies with its parent. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    STEP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    /* Only stdin, stdout, stderr and the exec-error pipe (close-on-exec) reach the program. */
    STEP(err_fd == 3 ? fcntl(3, F_SETFD, FD_CLOEXEC) == 0 : dup3(err_fd, 3, O_CLOEXEC) == 3);
    err_fd = 3;
    if (syscall(__NR_close_range, 4U, ~0U, 0) != 0)
        for (int fd = 4; fd < 65536; fd++) close(fd);
    STEP(install_seccomp() == 0);
    execve(C.argv[0], C.argv, C.env);
    step = 100;
fail:;
    int info[2] = {errno, step};
    write_all(err_fd, info, sizeof info);
    _exit(127);
#undef STEP
}

/* Fork the candidate; returns its pid once it has exec'd, or fails (an infrastructure error). */
static pid_t spawn_candidate(int status_fd, int workdir_fd) {
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) fail_to(status_fd, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) fail_to(status_fd, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(errpipe[0]);
        become_candidate(errpipe[1], workdir_fd);
    }
    close(errpipe[1]);
    int info[2];
    ssize_t n;
    do n = read(errpipe[0], info, sizeof info);
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof info) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_to(status_fd, "cannot start %s (%s): %s", C.argv[0], info[1] == 100 ? "execve" : "setting up the process",
                strerror(info[0]));
    }
    return pid;
}

/* ------------------------------------------------------------------ files in, files out */

struct reader {
    int fd;
    size_t pos, len;
    char buf[65536];
};

static ssize_t reader_fill(struct reader *r) {
    if (r->pos < r->len) return (ssize_t)(r->len - r->pos);
    ssize_t n;
    do n = read(r->fd, r->buf, sizeof r->buf);
    while (n < 0 && errno == EINTR);
    r->pos = 0;
    r->len = n > 0 ? (size_t)n : 0;
    return n;
}

static int reader_line(struct reader *r, char *out, size_t cap) {
    size_t n = 0;
    for (;;) {
        if (reader_fill(r) <= 0) return -1;
        char c = r->buf[r->pos++];
        if (c == '\n') {
            out[n] = 0;
            return (int)n;
        }
        if (n + 1 >= cap) return -1;
        out[n++] = c;
    }
}

/* Input files from the service into `dirfd` (the run's directory), owned by the run's uid. */
static void receive_files(int dirfd, int status_fd) {
    static struct reader r;
    r.fd = FD_FILES;
    r.pos = r.len = 0;
    char line[512];
    for (;;) {
        if (reader_line(&r, line, sizeof line) < 0) fail_to(status_fd, "input files: truncated header");
        if (!strcmp(line, "E")) break;
        unsigned mode;
        long long size;
        int off = 0;
        if (sscanf(line, "F %o %lld %n", &mode, &size, &off) != 2 || off <= 0) fail_to(status_fd, "input files: bad header");
        const char *name = line + off;
        if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") || size < 0 || size > MAX_FILE_BYTES)
            fail_to(status_fd, "input files: bad name or size");
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) fail_to(status_fd, "cannot create %s in the run directory: %s", name, strerror(errno));
        for (long long left = size; left > 0;) {
            ssize_t have = reader_fill(&r);
            if (have <= 0) fail_to(status_fd, "input files: truncated data");
            size_t chunk = (size_t)have < (unsigned long long)left ? (size_t)have : (size_t)left;
            if (write_all(fd, r.buf + r.pos, chunk) != 0)
                fail_to(status_fd, "cannot write %s (%lld bytes) into the run directory: %s", name, size, strerror(errno));
            r.pos += chunk;
            left -= (long long)chunk;
        }
        if (fchmod(fd, mode & 0755) != 0 || (C.drop && fchown(fd, C.uid, C.gid) != 0))
            fail_to(status_fd, "cannot hand %s to the run's user: %s", name, strerror(errno));
        close(fd);
    }
    close(FD_FILES);
}

/* After every process of the run is gone: the files the caller asked for, regular files only,
 * never through a link the program planted, at most collect_max bytes each. */
static void send_collected(int dirfd) {
    char head[512], buf[65536];
    for (int i = 0; i < C.n_collect; i++) {
        int fd = openat(dirfd, C.collect[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (C.collect_max <= 0 || st.st_size <= C.collect_max)) {
            int m = snprintf(head, sizeof head, "F %lld %s\n", (long long)st.st_size, C.collect[i]);
            write_all(FD_REPORT, head, (size_t)m);
            /* Nothing else writes the file any more: exactly st_size bytes follow (zeros if short). */
            for (long long left = st.st_size; left > 0;) {
                size_t want = left < (long long)sizeof buf ? (size_t)left : sizeof buf;
                ssize_t n = read(fd, buf, want);
                if (n <= 0) {
                    memset(buf, 0, want);
                    n = (ssize_t)want;
                }
                write_all(FD_REPORT, buf, (size_t)n);
                left -= n;
            }
        }
        close(fd);
    }
}

/* ------------------------------------------------------------------ the isolated run's root */

static void in_root(char *out, size_t cap, const char *rel) { snprintf(out, cap, "%s%s", NEWROOT, rel); }

static void mkdir_in_root(const char *rel, mode_t mode, int status_fd) {
    char p[PATH_MAX];
    in_root(p, sizeof p, rel);
    if (mkdir(p, mode) != 0 && errno != EEXIST) fail_to(status_fd, "mkdir %s: %s", p, strerror(errno));
}

static void bind_ro(const char *src, const char *rel, int status_fd) {
    char dst[PATH_MAX];
    in_root(dst, sizeof dst, rel);
    struct stat st;
    if (stat(src, &st) != 0) return; /* optional host path */
    char parents[PATH_MAX];
    snprintf(parents, sizeof parents, "%s", rel);
    for (char *s = parents + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir_in_root(parents, 0755, status_fd);
            *s = '/';
        }
    if (S_ISDIR(st.st_mode)) {
        mkdir_in_root(rel, 0755, status_fd);
    } else {
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) fail_to(status_fd, "create %s: %s", dst, strerror(errno));
        close(fd);
    }
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0) fail_to(status_fd, "bind %s: %s", src, strerror(errno));
    if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        fail_to(status_fd, "read-only %s: %s", src, strerror(errno));
}

/* /bin, /lib...: symlinks into /usr as on the host (merged /usr), else read-only binds. */
static void system_dirs(int status_fd) {
    static const char *names[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char target[PATH_MAX], dst[PATH_MAX];
        ssize_t n = readlink(names[i], target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            in_root(dst, sizeof dst, names[i]);
            if (symlink(target, dst) != 0) fail_to(status_fd, "symlink %s: %s", dst, strerror(errno));
        } else {
            bind_ro(names[i], names[i], status_fd);
        }
    }
}

static void tmpfs_in_root(const char *rel, const char *opts, int status_fd) {
    char p[PATH_MAX];
    in_root(p, sizeof p, rel);
    if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        fail_to(status_fd, "tmpfs %s (%s): %s", p, opts, strerror(errno));
}

/* Once per slot server, in its own mount, network and UTS namespaces: the runs' root file system
 * (read-only: /usr and the /bin, /lib links, two files of /etc, /dev with five devices, empty
 * mount points for /box, /dev/shm and /proc), pivoted into, so that every run's mount namespace
 * is a copy of a dozen mounts instead of the host's tree, and its network namespace (loopback
 * only, down) is this one.  Runs share them; nothing of a run can stay in them: the candidate has
 * no privilege over them and all of its processes die with its run. */
static void prepare_slot_root(int status_fd) {
    char p[PATH_MAX];
    if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWCGROUP) != 0)
        fail_to(status_fd, "cannot create the sandbox's namespaces (unshare): %s", strerror(errno));
    if (sethostname("sandbox", 7) != 0) fail_to(status_fd, "sethostname: %s", strerror(errno));
    /* Nothing mounted here may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail_to(status_fd, "make / private: %s", strerror(errno));
    if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=256,mode=0755") != 0)
        fail_to(status_fd, "tmpfs root on %s: %s", NEWROOT, strerror(errno));
    bind_ro("/usr", "/usr", status_fd);
    system_dirs(status_fd);
    mkdir_in_root("/etc", 0755, status_fd);
    bind_ro("/etc/ld.so.cache", "/etc/ld.so.cache", status_fd);
    bind_ro("/etc/alternatives", "/etc/alternatives", status_fd);
    for (int i = 0; i < C.n_ro; i++) bind_ro(C.ro[i], C.ro[i], status_fd);
    mkdir_in_root(BOX, 0755, status_fd);
    in_root(p, sizeof p, "/tmp");
    if (symlink("box", p) != 0) fail_to(status_fd, "symlink /tmp: %s", strerror(errno));
    mkdir_in_root("/dev", 0755, status_fd);
    tmpfs_in_root("/dev", "size=64k,nr_inodes=64,mode=0755", status_fd);
    static const char *devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        in_root(p, sizeof p, devices[i]);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) fail_to(status_fd, "create %s: %s", p, strerror(errno));
        close(fd);
        if (mount(devices[i], p, NULL, MS_BIND, NULL) != 0) fail_to(status_fd, "bind %s: %s", devices[i], strerror(errno));
    }
    static const char *links[][2] = {{"/proc/self/fd", "/dev/fd"},
                                      {"/proc/self/fd/0", "/dev/stdin"},
                                      {"/proc/self/fd/1", "/dev/stdout"},
                                      {"/proc/self/fd/2", "/dev/stderr"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        in_root(p, sizeof p, links[i][1]);
        if (symlink(links[i][0], p) != 0) fail_to(status_fd, "symlink %s: %s", p, strerror(errno));
    }
    mkdir_in_root("/dev/shm", 01777, status_fd);
    in_root(p, sizeof p, "/dev");
    if (mount(NULL, p, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=64,mode=0755") != 0)
        fail_to(status_fd, "read-only /dev: %s", strerror(errno));
    mkdir_in_root("/proc", 0555, status_fd);
    if (mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        fail_to(status_fd, "read-only root: %s", strerror(errno));
    if (chdir(NEWROOT) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        fail_to(status_fd, "pivot_root: %s", strerror(errno));
}

/* Per run, in the proxy's fresh mount namespace (a copy of the slot root): the run's only
 * writable places, /box (its directory; /tmp points there) and /dev/shm, each a tmpfs bounded in
 * bytes and inodes whose pages also count against the run's memory cgroup; and /proc for the
 * run's PID namespace, hidepid=2: a process sees only its own uid's processes, so the candidate
 * does not even see PID 1 (the proxy, root). */
static void mount_run_dirs(int status_fd) {
    char opts[256];
    snprintf(opts, sizeof opts, "size=%lld,nr_inodes=%lld,mode=0700,uid=%u,gid=%u", C.box_bytes, C.box_inodes,
             (unsigned)C.uid, (unsigned)C.gid);
    if (mount("tmpfs", BOX, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) fail_to(status_fd, "tmpfs %s: %s", BOX, strerror(errno));
    snprintf(opts, sizeof opts, "size=%lld,nr_inodes=%lld,mode=1777", C.shm_bytes, C.box_inodes);
    if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        fail_to(status_fd, "tmpfs /dev/shm: %s", strerror(errno));
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") != 0)
        fail_to(status_fd, "mount /proc: %s", strerror(errno));
}

/* ------------------------------------------------------------------ reaping */

struct outcome {
    int have_status;
    int status;
    long long maxrss_kb;
    long long wall_us;
};

/* Wait for the candidate, then kill and reap everything else of the run.  `kill_rest` is
 * kill(-1) for the proxy (PID 1 of the run's namespace: it reaches exactly the run's
 * processes); the rlimits keeper kills the candidate's group and its subreaped orphans. */
static void reap(pid_t cand, long long started_us, struct outcome *out, void (*kill_rest)(pid_t)) {
    for (;;) {
        int st;
        struct rusage ru;
        pid_t p = wait4(-1, &st, __WALL, &ru);
        if (p < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD: nothing left */
        }
        if (ru.ru_maxrss > out->maxrss_kb) out->maxrss_kb = ru.ru_maxrss;
        if (p == cand) {
            out->have_status = 1;
            out->status = st;
            out->wall_us = now_us() - started_us;
        }
        /* Once the program is gone, so is everything it left running (again after each reaped
         * process: an orphan re-parented to us since the last round is killed too). */
        if (out->have_status) kill_rest(cand);
    }
}

static void kill_namespace(pid_t cand) {
    (void)cand;
    if (getpid() == 1) kill(-1, SIGKILL); /* never outside a PID namespace of our own */
}

static void kill_group_and_orphans(pid_t cand) {
    kill(-cand, SIGKILL);
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    if (read_file(path, buf, sizeof buf) < 0) return;
    for (char *s = buf; *s;) {
        char *end;
        long pid = strtol(s, &end, 10);
        if (end == s) break;
        kill(-(pid_t)pid, SIGKILL);
        kill((pid_t)pid, SIGKILL);
        s = end;
    }
}

static void stdio_to_devnull(void) {
    /* Our copies of the program's stdio must not keep its pipes open once it is gone. */
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; fd++) dup2(devnull, fd);
    if (devnull > 2) close(devnull);
}

/* ------------------------------------------------------------------ the proxy */

static int proxy_main(int status_fd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The keeper died between clone and prctl (getppid() is 0 for a namespace's init, so ask the
     * pipe to it instead): stop rather than run a program nobody watches. */
    struct pollfd alive = {.fd = status_fd, .events = POLLOUT};
    if (poll(&alive, 1, 0) == 1 && (alive.revents & POLLERR)) _exit(1);
    /* Not dumpable: /proc/1/{fd,mem,environ}, ptrace and pidfd_getfd stay closed to everyone but
     * root, whatever else goes wrong. */
    prctl(PR_SET_DUMPABLE, 0);
    mount_run_dirs(status_fd);
    int boxfd = open(BOX, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (boxfd < 0) fail_to(status_fd, "open %s: %s", BOX, strerror(errno));
    receive_files(boxfd, status_fd);

    /* The run's CPU time and wall clock start here, before the program exists, and go to the
     * keeper with the "S" line.  Taken by the keeper when it reads that line, they would miss
     * whatever the program did until then: all of a short program (it may be over before the
     * keeper is scheduled), the first milliseconds of any on a busy machine, and as much CPU
     * and wall time again before the limits bite.  CLOCK_MONOTONIC is the keeper's clock too
     * (no time namespace).  The few microseconds of our own between here and execve count. */
    long long cpu_start = cgroup_cpu_us();
    if (cpu_start < 0) fail_to(status_fd, "cannot read the run's CPU time (%s): %s", C.cg_cpu, strerror(errno));
    long long started = now_us();
    pid_t cand = spawn_candidate(status_fd, -1);
    char start_line[64];
    int sl = snprintf(start_line, sizeof start_line, "S %lld %lld\n", cpu_start, started);
    if (write_all(status_fd, start_line, (size_t)sl) != 0) _exit(1);
    stdio_to_devnull();

    struct outcome out = {0};
    reap(cand, started, &out, kill_namespace);
    send_collected(boxfd);
    close(FD_REPORT); /* the keeper's report follows ours */
    char msg[128];
    int m = snprintf(msg, sizeof msg, "W %d %d %lld %lld\n", out.have_status, out.status, out.maxrss_kb, out.wall_us);
    write_all(status_fd, msg, (size_t)m);
    return 0;
}

/* ------------------------------------------------------------------ the keeper */

struct watch {
    int stopped, timed_out, cpu_limit;
};

static void keeper_result(const struct outcome *o, const struct watch *w, long long cpu_us, long long oom,
                          long long wall_us) {
    char line[512];
    int exit_code = -1, sig = -1;
    if (o->have_status) {
        if (WIFEXITED(o->status)) exit_code = WEXITSTATUS(o->status);
        else if (WIFSIGNALED(o->status)) sig = WTERMSIG(o->status);
    } else {
        sig = SIGKILL; /* we stopped the run before the program ended */
    }
    int m = snprintf(line, sizeof line,
                     "R exit=%d signal=%d cpu_us=%lld wall_us=%lld maxrss_kb=%lld oom_kills=%lld timed_out=%d "
                     "cpu_limit=%d stopped=%d\n",
                     exit_code, sig, cpu_us < 0 ? 0 : cpu_us, wall_us, o->maxrss_kb, oom < 0 ? 0 : oom, w->timed_out,
                     w->cpu_limit, w->stopped);
    write_all(FD_REPORT, line, (size_t)m);
}

static int poll_timeout_ms(long long deadline_us, long long cpu_used_us, int ncpu) {
    long long wait = (deadline_us - now_us()) / 1000 + 1;
    if (C.cg_cpu && C.cpu_ms > 0) {
        /* The run burns at most ncpu ms of CPU per ms: look again before it could pass the limit. */
        long long left_ms = (C.cpu_ms * 1000 - cpu_used_us) / 1000 / (ncpu > 0 ? ncpu : 1);
        long long step = left_ms < 5 ? 5 : left_ms > 100 ? 100 : left_ms;
        if (step < wait) wait = step;
    }
    return wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
}

struct status_reader {
    char buf[512];
    size_t len;
    int started;
    long long t_start, cpu_start; /* the proxy's, taken before the program was started */
    struct outcome out;
    char err[300];
};

/* Lines from the proxy: "S <cgroup CPU us> <monotonic us>" (the program runs; both counters as
 * they were just before it started), "W ..." (how it ended), "X ..." (set-up failed). */
static int read_status(int fd, struct status_reader *s) {
    ssize_t n = read(fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
    if (n < 0 && errno == EINTR) return 1;
    if (n <= 0) return 0;
    s->len += (size_t)n;
    s->buf[s->len] = 0;
    char *nl;
    while ((nl = strchr(s->buf, '\n'))) {
        *nl = 0;
        if (s->buf[0] == 'S' && !s->started) {
            long long cpu, t;
            char end;
            /* Ours, never the program's (it holds no descriptor of this pipe); checked anyway:
             * a start we cannot read is no start to measure from. */
            if (sscanf(s->buf, "S %lld %lld%c", &cpu, &t, &end) != 2 || cpu < 0 || t <= 0 || t > now_us())
                snprintf(s->err, sizeof s->err, "the sandbox's init reported a bad start: %.200s", s->buf);
            else {
                s->started = 1;
                s->cpu_start = cpu;
                s->t_start = t;
            }
        } else if (s->buf[0] == 'W') {
            sscanf(s->buf, "W %d %d %lld %lld", &s->out.have_status, &s->out.status, &s->out.maxrss_kb, &s->out.wall_us);
        } else if (s->buf[0] == 'X') {
            snprintf(s->err, sizeof s->err, "%s", s->buf + 2);
        }
        size_t rest = s->len - (size_t)(nl + 1 - s->buf);
        memmove(s->buf, nl + 1, rest);
        s->len = rest;
        s->buf[s->len] = 0;
    }
    if (s->len == sizeof s->buf - 1) s->len = 0; /* a line that long is not ours */
    return 1;
}

static int keeper_isolated(void) {
    int sp[2];
    if (pipe2(sp, O_CLOEXEC) != 0) fail_to(FD_REPORT, "pipe: %s", strerror(errno));
    long long oom0 = cgroup_oom_kills();
    long long t0 = now_us();
    /* Network, UTS and cgroup namespaces are the slot server's (see prepare_slot_root). */
    pid_t proxy = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | SIGCHLD, NULL, NULL, NULL, NULL);
    if (proxy < 0) fail_to(FD_REPORT, "cannot create the run's namespaces (clone): %s", strerror(errno));
    if (proxy == 0) {
        close(sp[0]);
        close(FD_CONTROL);
        _exit(proxy_main(sp[1]));
    }
    close(sp[1]);
    close(FD_FILES);
    stdio_to_devnull();

    int pidfd = (int)syscall(SYS_pidfd_open, proxy, 0);
    int ctl = FD_CONTROL, status_open = 1, proxy_gone = 0;
    long long cpu0 = -1;
    struct watch w = {0};
    struct status_reader s = {.t_start = t0};
    long long deadline = t0 + (C.wall_ms + 2000) * 1000; /* + a set-up allowance until the program runs */
    /* Until the proxy has reported how the program ended (all of the run's processes are gone
     * by then) or is gone itself; its own exit (the namespaces' teardown) is not waited for. */
    while (!s.out.have_status && !s.err[0]) {
        int st;
        if (waitpid(proxy, &st, WNOHANG) == proxy) {
            proxy_gone = 1;
            break;
        }
        int stopping = w.cpu_limit || w.timed_out || w.stopped;
        long long used = 0;
        if (cpu0 >= 0) {
            long long cpu_now = cgroup_cpu_us();
            if (cpu_now < 0) {
                /* A run nobody can hold to its CPU limit is stopped (not graded: our failure). */
                kill(proxy, SIGKILL);
                waitpid(proxy, NULL, 0);
                fail_to(FD_REPORT, "cannot read the run's CPU time (%s): %s", C.cg_cpu, strerror(errno));
            }
            used = cpu_now - cpu0;
        }
        if (!stopping && C.cpu_ms > 0 && used > C.cpu_ms * 1000) {
            w.cpu_limit = 1;
            kill(proxy, SIGKILL);
        } else if (!stopping && now_us() >= deadline) {
            w.timed_out = 1;
            kill(proxy, SIGKILL);
        }
        struct pollfd fds[3] = {{.fd = ctl, .events = POLLIN},
                                {.fd = status_open ? sp[0] : -1, .events = POLLIN},
                                {.fd = pidfd, .events = POLLIN}};
        int r = poll(fds, 3, pidfd >= 0 ? poll_timeout_ms(deadline, used, C.ncpu) : 10);
        if (r < 0 && errno != EINTR) fail_to(FD_REPORT, "poll: %s", strerror(errno));
        if (fds[0].revents) {
            ctl = -1; /* the service asked us to stop (output limit, cancel) or is gone */
            if (!(w.cpu_limit || w.timed_out)) {
                w.stopped = 1;
                kill(proxy, SIGKILL);
            }
        }
        if (fds[1].revents) {
            int was_started = s.started;
            status_open = read_status(sp[0], &s);
            if (s.started && !was_started) {
                /* The program runs: its CPU time and wall clock count from the proxy's start (see
                 * proxy_main), however late we got to read it. */
                cpu0 = s.cpu_start;
                deadline = s.t_start + C.wall_ms * 1000;
            }
        }
    }
    if (proxy_gone)
        while (status_open && (status_open = read_status(sp[0], &s))) {
        }
    /* A killed proxy was PID 1 of the run: its death has killed every process of the run, and
     * waitpid returns once they are all gone.  A proxy that reported has reaped them all.  One
     * whose report we cannot use (an "X" line: it is on its way out anyway; a bad "S" line) is
     * killed first rather than left to run a program nobody measures. */
    if (!proxy_gone && s.err[0]) kill(proxy, SIGKILL);
    if (!proxy_gone && !s.out.have_status) waitpid(proxy, NULL, 0);
    if (s.err[0]) fail_to(FD_REPORT, "%s", s.err);
    if (!s.started && !w.stopped) fail_to(FD_REPORT, "the sandbox's init exited before starting the program");
    if (!s.out.have_status && !(w.timed_out || w.cpu_limit || w.stopped))
        fail_to(FD_REPORT, "the sandbox's init died without a report");
    long long wall = s.out.have_status ? s.out.wall_us : now_us() - s.t_start;
    long long cpu = 0;
    if (cpu0 >= 0) {
        long long cpu_end = cgroup_cpu_us();
        if (cpu_end < 0) fail_to(FD_REPORT, "cannot read the run's CPU time (%s): %s", C.cg_cpu, strerror(errno));
        cpu = cpu_end - cpu0;
    }
    long long oom = cgroup_oom_kills() - oom0;
    if (C.cpu_ms > 0 && cpu > C.cpu_ms * 1000) w.cpu_limit = 1;
    keeper_result(&s.out, &w, cpu, oom, wall);
    /* The result is out; the report's end (our exit) tells the service the slot is free again,
     * once the run's namespaces and its tmpfs pages are gone. */
    waitpid(proxy, NULL, 0);
    return 0;
}

static int keeper_rlimits(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int dirfd = open(C.workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) fail_to(FD_REPORT, "open %s: %s", C.workdir, strerror(errno));
    receive_files(dirfd, FD_REPORT);
    long long t0 = now_us();
    pid_t cand = spawn_candidate(FD_REPORT, dirfd);
    stdio_to_devnull();
    int pidfd = (int)syscall(SYS_pidfd_open, cand, 0);
    struct watch w = {0};
    struct outcome out = {0};
    long long deadline = t0 + C.wall_ms * 1000;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)cand, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == cand) break;
        if (now_us() >= deadline) {
            w.timed_out = 1;
            break;
        }
        struct pollfd fds[2] = {{.fd = FD_CONTROL, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
        long long wait = (deadline - now_us()) / 1000 + 1;
        int r = poll(fds, 2, pidfd >= 0 ? (int)(wait < 0 ? 0 : wait > 1000 ? 1000 : wait) : 10);
        if (r < 0 && errno != EINTR) fail_to(FD_REPORT, "poll: %s", strerror(errno));
        if (fds[0].revents) {
            w.stopped = 1;
            break;
        }
    }
    if (w.stopped || w.timed_out) kill_group_and_orphans(cand);
    reap(cand, t0, &out, kill_group_and_orphans);
    send_collected(dirfd);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    long long cpu = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    if (C.cpu_ms > 0 && cpu > C.cpu_ms * 1000) w.cpu_limit = 1;
    if (w.stopped || w.timed_out) out.have_status = 0;
    keeper_result(&out, &w, cpu, 0, out.have_status ? out.wall_us : now_us() - t0);
    return 0;
}

/* ------------------------------------------------------------------ the slot server */

/* In the forked keeper: take the request's descriptors, parse it, run it. */
static void run_request(char *msg, size_t len, const int *fds) __attribute__((noreturn));
static void run_request(char *msg, size_t len, const int *fds) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* fds: stdin, stdout, stderr, files, report, control -> 0..5 (dup2 clears close-on-exec;
     * every one of them is closed or replaced before the candidate's execve). */
    int tmp[6];
    for (int i = 0; i < 6; i++) tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < 6; i++) {
        if (tmp[i] < 0 || dup2(tmp[i], i) != i) _exit(3);
        close(tmp[i]);
        close(fds[i]);
    }
    for (int fd = FD_FILES; fd <= FD_CONTROL; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* The slot's cgroup counters stay open (close-on-exec, and closed for the candidate). */
    for (int fd = FD_FIRST_FREE; fd < 1024; fd++)
        if (fd != C.cg_cpu_fd && fd != C.cg_oom_fd) close(fd);
    char *argv[4096];
    int argc = 0;
    for (size_t i = 0; i < len && argc < 4095; i += strlen(msg + i) + 1) argv[argc++] = msg + i;
    argv[argc] = NULL;
    parse_options(argv, argc, 1);
    _exit(C.isolated ? keeper_isolated() : keeper_rlimits());
}

static int open_high(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 100);
    close(fd);
    return high;
}

static int serve(int argc, char **argv) {
    C.sock_fd = -1;
    parse_options(argv, argc, 0);
    const int sock = C.sock_fd;
    if (sock < 0) fail_to(-1, "--sock-fd is required");
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    /* Die with the service; never the OOM killer's choice inside the slot's cgroup. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_DUMPABLE, 0);
    set_oom_score_adj("-1000");
    signal(SIGPIPE, SIG_IGN);
    umask(022);
    for (int i = 0; i < C.n_cg_procs; i++) {
        int fd = open(C.cg_procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) fail_to(sock, "cannot join %s: %s", C.cg_procs[i], strerror(errno));
        close(fd);
    }
    /* An isolated run's CPU time and limit are the cgroup's: no counter, no run (not a CPU time
     * of 0 and no limit). */
    if (C.isolated && !C.cg_cpu) fail_to(sock, "--mode=isolated needs --cg-cpu (the runs' CPU time)");
    /* Kept open for every keeper, above the descriptors a request uses. */
    if (C.cg_cpu && (C.cg_cpu_fd = open_high(C.cg_cpu)) < 0) fail_to(sock, "cannot open %s: %s", C.cg_cpu, strerror(errno));
    if (C.cg_oom && (C.cg_oom_fd = open_high(C.cg_oom)) < 0) fail_to(sock, "cannot open %s: %s", C.cg_oom, strerror(errno));
    C.ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (C.isolated) prepare_slot_root(sock);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) fail_to(sock, "signalfd: %s", strerror(errno));
    if (write_all(sock, "ready\n", 6) != 0) return 1;
    static char msg[MAX_REQUEST + 1];
    for (;;) {
        struct pollfd fds[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) return 1;
        if (fds[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0) {
            }
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
        }
        if (!fds[0].revents) continue;
        char cbuf[CMSG_SPACE(6 * sizeof(int))];
        struct iovec iov = {.iov_base = msg, .iov_len = MAX_REQUEST};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0; /* the service closed the socket: done */
        int fds_in[6], nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                memcpy(fds_in, CMSG_DATA(c), (size_t)(nfds > 6 ? 6 : nfds) * sizeof(int));
            }
        if (nfds != 6 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            for (int i = 0; i < nfds && i < 6; i++) close(fds_in[i]);
            continue; /* not a request of ours: the caller sees its report descriptor close */
        }
        msg[n] = 0;
        pid_t keeper = fork();
        if (keeper == 0) {
            close(sock);
            close(sfd);
            sigprocmask(SIG_UNBLOCK, &chld, NULL);
            run_request(msg, (size_t)n, fds_in);
        }
        for (int i = 0; i < 6; i++) close(fds_in[i]);
        if (keeper < 0) {
            /* The caller sees its report descriptor close without a result: a sandbox failure. */
            continue;
        }
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "serve")) return serve(argc - 2, argv + 2);
    fprintf(stderr, "usage: vibe-box serve --sock-fd=N --mode=isolated|rlimits [--cg-procs=F]... [--cg-cpu=F] [--cg-oom=F]\n"
                    "  (started by the scoring service, which sends it runs on that socket; see the comment on top)\n");
    return 2;
}
