"""OS confinement of a worker process: the second wall, which must hold even if Wasmtime fails.

Applied inside the worker before it touches any plugin, in an order that works:

1. ``PR_SET_PDEATHSIG`` + parent check (die with the supervisor),
2. ``unshare`` of a user and a network namespace (while still single-threaded),
3. rlimits (no core dumps, no file writes, bounded descriptors and data memory),
4. engine set-up (by the caller: Wasmtime needs files and syscalls that come later closed),
5. ``PR_SET_NO_NEW_PRIVS``, 6. Landlock (read-only Python + cache, writes nowhere, no TCP,
   no abstract unix sockets or signals outside), 7. seccomp last (no sockets, exec, fork, ptrace,
   mount, io_uring, bpf, keyctl, ...; threads keep working).

Every step reports a :class:`Layer`; missing kernel features degrade to ``active=False`` with the
reason, and the supervisor can require every layer (fail closed).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PARENT_CHECK_SECONDS = 0.5
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
# Filesystem rights by Landlock ABI version (bit positions from linux/landlock.h).
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
                     5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

#: Denied outright: nothing a worker running wasm needs, everything an escaping attacker wants.
DENIED_SYSCALLS = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount", "open_tree",
    "fsopen", "fsmount", "fsconfig", "fspick", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "bpf", "keyctl", "add_key", "request_key", "perf_event_open",
    "userfaultfd", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "open_by_handle_at",
    "name_to_handle_at", "fanotify_init", "mknod", "mknodat", "syslog", "quotactl",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "tkill", "setuid", "setgid",
    "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "personality",
)


@dataclass
class Layer:
    """One confinement layer and whether it is in force here."""

    name: str
    active: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _err() -> str:
    code = ctypes.get_errno()
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"


# -- 1. life tied to the supervisor ------------------------------------------------------------


def die_with_parent(parent_pid: int, *, pdeathsig: bool = True) -> Layer:
    """Ask the kernel for SIGKILL when the parent dies, then close the race where it already has.

    PR_SET_PDEATHSIG fires when the *thread* that forked us exits, not the process. Trio starts
    processes from its thread cache, whose idle threads exit after 10 s, so under trio the
    supervisor passes ``pdeathsig=False`` and ``watch_parent`` (a pidfd, woken the instant the
    parent exits) does the job alone."""
    if not sys.platform.startswith("linux"):
        return Layer("pdeathsig", False, "not Linux: relying on the closed pipe to notice")
    if pdeathsig and _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return Layer("pdeathsig", False, f"prctl failed ({_err()})")
    if os.getppid() != parent_pid:
        os._exit(70)
    if not pdeathsig:
        return Layer("pdeathsig", True, "spawned from a short-lived thread: the parent is watched "
                     "through a pidfd instead of PR_SET_PDEATHSIG")
    return Layer("pdeathsig", True, "SIGKILL when the supervisor dies, plus a parent check")


def watch_parent(parent_pid: int) -> None:
    """A thread that exits the process the moment the parent does (a pidfd becomes readable when
    its process exits), or, without pidfds, when polling sees the parent change."""
    try:
        pidfd: int | None = os.pidfd_open(parent_pid)
    except (AttributeError, OSError):
        pidfd = None
    if os.getppid() != parent_pid:  # the pid may have been reused before pidfd_open
        os._exit(70)

    def watch() -> None:
        if pidfd is not None:
            waiter = select.poll()
            waiter.register(pidfd, select.POLLIN)
            while not waiter.poll():
                pass
            os._exit(70)
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# -- 2. namespaces ------------------------------------------------------------------------------


def enter_namespaces() -> Layer:
    """A new user + network namespace: no interfaces but a down loopback. Must run single-threaded."""
    if not sys.platform.startswith("linux"):
        return Layer("netns", False, "not Linux")
    if threading.active_count() > 1:
        return Layer("netns", False, "the process is already multi-threaded")
    libc = _libc()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return Layer("netns", True, "new user and network namespaces (no network interfaces)")
    first = _err()
    if libc.unshare(CLONE_NEWNET) == 0:
        return Layer("netns", True, "new network namespace (no network interfaces)")
    return Layer("netns", False, f"unshare refused ({first}; {_err()})")


# -- 3. rlimits ---------------------------------------------------------------------------------


def set_rlimits(*, data_bytes: int, max_files: int = 4096, file_bytes: int = 256 * 1024**2) -> Layer:
    """No core dumps, bounded file size, descriptors and data memory (RLIMIT_DATA, not RLIMIT_AS:
    Wasmtime reserves large PROT_NONE regions that only count once made writable). The file-size
    cap is not zero because Wasmtime builds copy-on-write memory images in memfds; Landlock is what
    forbids writing real files."""
    wanted = {
        "RLIMIT_CORE": 0,
        "RLIMIT_FSIZE": file_bytes,
        "RLIMIT_NOFILE": max_files,
        "RLIMIT_DATA": data_bytes,
    }
    applied = []
    for name, value in wanted.items():
        which = getattr(resource, name)
        _soft, hard = resource.getrlimit(which)
        limit = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(which, (limit, limit))
        except (ValueError, OSError) as exc:
            return Layer("rlimits", False, f"{name}: {exc}")
        applied.append(f"{name.removeprefix('RLIMIT_').lower()}={limit}")
    return Layer("rlimits", True, ", ".join(applied))


# -- 5. no new privileges -----------------------------------------------------------------------


def no_new_privs() -> Layer:
    if not sys.platform.startswith("linux"):
        return Layer("no_new_privs", False, "not Linux")
    if _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return Layer("no_new_privs", False, f"prctl failed ({_err()})")
    return Layer("no_new_privs", True, "execve can never gain privileges")


# -- 6. Landlock --------------------------------------------------------------------------------


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 if Landlock is unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


def landlock(read_paths: Iterable[str]) -> Layer:
    """Allow reading (and executing) only ``read_paths``; no writes anywhere, no TCP, and (ABI 6+)
    no abstract unix sockets or signals reaching outside this process."""
    abi = landlock_abi()
    if abi == 0:
        return Layer("landlock", False, f"Landlock is not available in this kernel ({_err()})")
    libc = _libc()
    fs_rights = _FS_RIGHTS_BY_ABI.get(abi, (1 << 16) - 1)
    if abi >= 6:
        attr = struct.pack("QQQ", fs_rights, NET_BIND_TCP | NET_CONNECT_TCP,
                           SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    elif abi >= 4:
        attr = struct.pack("QQ", fs_rights, NET_BIND_TCP | NET_CONNECT_TCP)
    else:
        attr = struct.pack("Q", fs_rights)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, buffer, len(attr), 0)
    if ruleset < 0:
        return Layer("landlock", False, f"cannot create a ruleset ({_err()})")
    allowed: list[str] = []
    try:
        for path in dict.fromkeys(os.path.realpath(p) for p in read_paths):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rights = FS_EXECUTE | FS_READ_FILE
                if os.path.isdir(path):
                    rights |= FS_READ_DIR
                rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
                if libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, rule, 0):
                    return Layer("landlock", False, f"cannot add a rule for {path} ({_err()})")
                allowed.append(path)
            finally:
                os.close(fd)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return Layer("landlock", False, f"restrict_self failed ({_err()})")
    finally:
        os.close(ruleset)
    scope = ", no abstract unix sockets or signals outside" if abi >= 6 else ""
    net = ", no TCP bind/connect" if abi >= 4 else ""
    return Layer("landlock", True,
                 f"ABI {abi}: read-only {len(allowed)} paths, writes nowhere{net}{scope}")


# -- 7. seccomp ---------------------------------------------------------------------------------

_SECCOMP_BINDING: dict[str, Any] = {}


def preload() -> None:
    """Import what later layers need while files are still readable (pyseccomp looks libraries
    up with helper processes and temporary files, which Landlock and seccomp then forbid)."""
    try:
        import pyseccomp

        _SECCOMP_BINDING["module"] = pyseccomp
    except (ImportError, RuntimeError, OSError) as exc:
        _SECCOMP_BINDING["error"] = str(exc) or type(exc).__name__


def seccomp() -> Layer:
    """Deny the syscalls in :data:`DENIED_SYSCALLS`, non-thread ``clone``, signals, limits,
    priorities and scheduling aimed at other processes, and make ``clone3`` fail with ENOSYS so
    libc falls back to ``clone`` for threads."""
    pyseccomp = _SECCOMP_BINDING.get("module")
    if pyseccomp is None:
        return Layer("seccomp", False, f"no libseccomp binding ({_SECCOMP_BINDING.get('error')})")
    try:
        deny = pyseccomp.ERRNO(errno.EPERM)
        flt = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
        skipped = []
        for name in DENIED_SYSCALLS:
            try:
                flt.add_rule(deny, name)
            except (RuntimeError, ValueError, OSError):
                skipped.append(name)  # not a syscall on this architecture
        flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
        flt.add_rule(deny, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, CLONE_THREAD, 0))
        me = os.getpid()
        # Signals only to itself (Landlock's signal scope covers this too, on ABI >= 6).
        for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            flt.add_rule(deny, name, pyseccomp.Arg(0, pyseccomp.NE, me))
        # Limits, priorities and scheduling only of itself (0 = "the caller"): another process of
        # the same user (the supervisor!) could otherwise be killed with RLIMIT_CPU=1 or starved.
        for name in ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam",
                     "sched_setattr", "move_pages", "migrate_pages"):
            flt.add_rule(deny, name, pyseccomp.Arg(0, pyseccomp.NE, 0))
        for name in ("setpriority", "ioprio_set"):
            flt.add_rule(deny, name, pyseccomp.Arg(1, pyseccomp.NE, 0))
        for name in ("kcmp", "process_madvise", "process_mrelease"):
            try:
                flt.add_rule(deny, name)
            except (RuntimeError, ValueError, OSError):
                skipped.append(name)
        flt.load()
    except Exception as exc:  # libseccomp missing or refusing: report, never crash
        return Layer("seccomp", False, f"cannot load the filter: {exc}")
    return Layer("seccomp", True, f"{len(DENIED_SYSCALLS) + 16 - len(skipped)} syscall rules, "
                                  "threads only, no exec/fork/sockets/ptrace, acts only on itself")


# -- plumbing -----------------------------------------------------------------------------------


def close_inherited_fds(keep: set[int]) -> list[int]:
    """Close every descriptor except stdio and ``keep``; return the ones that were open."""
    stray: list[int] = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return stray
    for name in names:
        fd = int(name)
        if fd <= 2 or fd in keep:
            continue
        try:
            os.close(fd)
            stray.append(fd)
        except OSError:
            pass  # the descriptor listdir itself used
    return stray


def silence_stdio() -> None:
    """Point stdin and stdout at /dev/null: stray prints can never reach the protocol channel."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def python_read_paths() -> list[str]:
    """What the worker's Python needs to keep importing: its install and the sandbox package."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, here}
    paths.update(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    return sorted(paths)
