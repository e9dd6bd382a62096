"""Probes of the OS confinement: the wall that must hold even if Wasmtime fails.

Each probe is a fresh "worker-like" process that applies the REAL layers of ``sandbox.confine`` in
the order ``sandbox.worker.main`` does (die_with_parent, enter_namespaces, set_rlimits,
close_inherited_fds/silence_stdio, engine set-up, preload, watch_parent, no_new_privs, landlock,
seccomp), then tries things an escaping plugin would want and reports every outcome as JSON.

Every attempt is also made by an unconfined CONTROL run of the same script, and each assertion
checks that the attempt works there: a probe that fails for an unrelated reason proves nothing.
A few probes apply one layer alone, to check that each wall holds without the others.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from cortex_runtime import Runtime

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"),
    reason="the confinement layers and the syscall numbers below are Linux x86_64/aarch64",
)

REPO = Path(__file__).resolve().parent.parent
SECRET = f"cortex-probe-secret-{uuid.uuid4().hex}"
#: Every layer a confined worker applies, in the order it reports them.
ALL_LAYERS = ("pdeathsig", "netns", "rlimits", "no_new_privs", "landlock", "seccomp")
#: Differs from the baseline the probe starts with, so the rlimits layer visibly applies it.
DATA_LIMIT = 3 * 1024**3 + 4096
BASELINE_CORE = 1 << 20
BASELINE_NOFILE = 8192
EXEC_MARKER = "EXECV-REACHED"

# The probe. argv: <repo root> <config json>. Its first stdout line is the JSON report; then either
# the exec'd program's marker (the exec worked) or a JSON line with the exec error.
PROBE_SCRIPT = r"""
import ctypes, errno, json, os, platform, resource, signal, socket, struct, subprocess, sys, threading
sys.path.insert(0, sys.argv[1])
cfg = json.loads(sys.argv[2])
wanted = set(cfg["layers"])
from sandbox import confine

NR = {
    "x86_64": {"ptrace": 101, "mount": 165, "unshare": 272, "bpf": 321, "io_uring_setup": 425,
               "keyctl": 250, "clone3": 435, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297},
    "aarch64": {"ptrace": 117, "mount": 40, "unshare": 97, "bpf": 280, "io_uring_setup": 425,
                "keyctl": 219, "clone3": 435, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240},
}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def raw(name, *args):
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(NR[name]),
                       *(ctypes.c_long(a) if isinstance(a, int) else a for a in args))
    if ret == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(ret)

# A baseline that the rlimits layer must visibly change (the control keeps it).
resource.setrlimit(resource.RLIMIT_CORE, (cfg["core"], cfg["core"]))
resource.setrlimit(resource.RLIMIT_NOFILE, (cfg["nofile"], cfg["nofile"]))

report_fd = os.dup(1)
layers = []
# 1-3, single-threaded, as in sandbox.worker.main
if "pdeathsig" in wanted:
    layers.append(confine.die_with_parent(cfg["parent"]))
if "netns" in wanted:
    layers.append(confine.enter_namespaces())
net_ns = os.readlink("/proc/self/ns/net")
with open("/proc/self/net/dev") as f:
    net_dev = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
if "rlimits" in wanted:
    layers.append(confine.set_rlimits(data_bytes=cfg["data_limit"]))
confine.close_inherited_fds({report_fd})
confine.silence_stdio()
sys.stdout = sys.stderr
# 4: the engine, while files and syscalls are still open
import wasmtime
from sandbox.engine import make_engine
engine = make_engine()
if "seccomp" in wanted:
    confine.preload()
confine.watch_parent(cfg["parent"])
# 5-7
if "no_new_privs" in wanted:
    layers.append(confine.no_new_privs())
if "landlock" in wanted:
    layers.append(confine.landlock([*confine.python_read_paths(), *cfg["read_paths"]]))
if "seccomp" in wanted:
    layers.append(confine.seccomp())

results = {}

def attempt(name, fn):
    try:
        results[name] = {"ok": True, "value": fn()}
    except OSError as exc:
        results[name] = {"ok": False, "errno": errno.errorcode.get(exc.errno, exc.errno),
                         "error": repr(exc)}
    except Exception as exc:
        results[name] = {"ok": False, "errno": None, "error": repr(exc)}

def make_socket(family, kind):
    socket.socket(family, kind).close()
    return True

def bind_abstract():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(cfg["abstract_own"])
    return True

def tcp_connect():
    with socket.create_connection(("127.0.0.1", cfg["tcp_port"]), timeout=3):
        return True

def unix_connect():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(cfg["abstract_listener"])
    return True

def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # never leave a child behind, whatever happens
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def run_thread():
    seen = []
    t = threading.Thread(target=lambda: seen.append(threading.get_native_id()))
    t.start()
    t.join(5)
    if not seen:
        raise RuntimeError("the thread never ran")
    return seen[0] != threading.get_native_id()

def siginfo():
    info = ctypes.create_string_buffer(128)
    struct.pack_into("iii", info, 0, 0, 0, -1)  # si_signo, si_errno, si_code = SI_QUEUE
    return info

def read(path):
    with open(path, "rb") as f:
        return len(f.read(64))

def create(path):
    with open(path, "x") as f:
        f.write("x")
    return True

def append(path):
    with open(path, "a") as f:
        f.write("x")
    return True

def io_uring():
    params = ctypes.create_string_buffer(120)
    fd = raw("io_uring_setup", 1, params)
    os.close(fd)
    return True

WAT = '''(module (func (export "sum") (param i32) (result i32) (local i32)
  (block (loop (br_if 1 (i32.eqz (local.get 0)))
    (local.set 1 (i32.add (local.get 1) (local.get 0)))
    (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br 0)))
  (local.get 1)))'''

def run_wasm():
    module = wasmtime.Module(engine, WAT)  # compiled after every layer is in force
    store = wasmtime.Store(engine)
    store.set_fuel(1_000_000)
    store.set_epoch_deadline(1)
    instance = wasmtime.Instance(store, module, [])
    return instance.exports(store)["sum"](store, 100)

ppid = os.getppid()
attempt("socket_tcp", lambda: make_socket(socket.AF_INET, socket.SOCK_STREAM))
attempt("socket_udp", lambda: make_socket(socket.AF_INET, socket.SOCK_DGRAM))
attempt("socket_unix", lambda: make_socket(socket.AF_UNIX, socket.SOCK_STREAM))
attempt("socketpair", lambda: [s.close() for s in socket.socketpair()] and True)
attempt("abstract_unix_bind", bind_abstract)
attempt("tcp_connect", tcp_connect)
attempt("unix_connect", unix_connect)
attempt("subprocess_true", lambda: subprocess.run(["/bin/true"], check=True).returncode)
attempt("fork", fork)
attempt("thread", run_thread)
attempt("clone3", lambda: raw("clone3", None, 0))
attempt("ptrace_seize", lambda: raw("ptrace", 0x4206, cfg["victim"], None, None))
attempt("kill_parent_0", lambda: os.kill(ppid, 0))
attempt("kill_parent_cont", lambda: os.kill(ppid, signal.SIGCONT))
attempt("kill_victim_0", lambda: os.kill(cfg["victim"], 0))
attempt("sigqueue_parent", lambda: raw("rt_sigqueueinfo", ppid, 0, siginfo()))
attempt("tgsigqueue_parent", lambda: raw("rt_tgsigqueueinfo", ppid, ppid, 0, siginfo()))
# Other processes of the same user: change the victim's limits and scheduling (harmless values),
# and read the parent's limits (prlimit checks the same permission for reading and writing).
attempt("prlimit_victim", lambda: resource.prlimit(cfg["victim"], resource.RLIMIT_CORE, (0, 0)))
attempt("prlimit_parent_read", lambda: resource.prlimit(ppid, resource.RLIMIT_CPU))
attempt("setpriority_victim", lambda: os.setpriority(os.PRIO_PROCESS, cfg["victim"], 19))
attempt("setaffinity_victim",
        lambda: os.sched_setaffinity(cfg["victim"], os.sched_getaffinity(cfg["victim"])))
attempt("mount", lambda: raw("mount", None, None, None, 0, None))
attempt("unshare", lambda: raw("unshare", 0))
attempt("bpf", lambda: raw("bpf", 0, None, 0))
attempt("io_uring_setup", io_uring)
attempt("keyctl", lambda: raw("keyctl", 0, -3, 0))  # KEYCTL_GET_KEYRING_ID, session keyring
attempt("read_passwd", lambda: read("/etc/passwd"))
attempt("read_home", lambda: read(cfg["home_file"]))
attempt("read_cache", lambda: read(cfg["cache_file"]))
attempt("write_tmp", lambda: create(cfg["tmp_write"]))
attempt("write_cache", lambda: create(cfg["cache_write"]))
attempt("append_cache", lambda: append(cfg["cache_append"]))
attempt("wasm", run_wasm)

report = {
    "layers": [layer.as_dict() for layer in layers],
    "results": results,
    "environ": dict(os.environ),
    "net_ns": net_ns,
    "net_dev": net_dev,
    "rlimits": {name: list(resource.getrlimit(getattr(resource, "RLIMIT_" + name)))
                for name in ("CORE", "DATA", "NOFILE", "FSIZE")},
}
data = (json.dumps(report) + "\n").encode()
while data:
    data = data[os.write(report_fd, data):]
# Last: exec a program that prints a marker on the report pipe. Succeeding replaces this process.
os.dup2(report_fd, 1)
try:
    os.execv("/bin/echo", ["echo", cfg["exec_marker"]])
except OSError as exc:
    failure = {"ok": False, "errno": errno.errorcode.get(exc.errno, exc.errno), "error": repr(exc)}
    os.write(report_fd, (json.dumps({"execv": failure}) + "\n").encode())
os._exit(0)
"""


class Listener:
    """A stream listener in the test process that counts the connections it is offered."""

    def __init__(self, family: int, address: Any) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> int:
        """Stop, count what is still in the backlog, and return the number of connections."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.setblocking(False)
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, OSError):
                break
            self.accepted += 1
            conn.close()
        self.sock.close()
        return self.accepted


@dataclass
class ProbeRun:
    """What one probe process reported."""

    layers: tuple[str, ...]
    config: dict[str, Any]
    report: dict[str, Any]
    execv: dict[str, Any]
    tcp_connections: int
    unix_connections: int
    stderr: str

    def __getitem__(self, attempt: str) -> dict[str, Any]:
        if attempt == "execv":
            return self.execv
        return dict(self.report["results"][attempt])


@dataclass
class ProbeSite:
    """Files, a victim process and a cache the probes aim at; runs probes (memoised by layers)."""

    root: Path
    cache: Path
    home_file: Path
    victim: subprocess.Popen[bytes]
    runs: dict[tuple[str, ...], ProbeRun] = field(default_factory=dict)
    tmp_files: list[Path] = field(default_factory=list)

    def run(self, layers: tuple[str, ...]) -> ProbeRun:
        if layers not in self.runs:
            self.runs[layers] = self._run(layers)
        return self.runs[layers]

    def _run(self, layers: tuple[str, ...]) -> ProbeRun:
        tag = uuid.uuid4().hex[:12]
        tmp_write = Path(tempfile.gettempdir()) / f"cortex-probe-{tag}.txt"
        self.tmp_files.append(tmp_write)
        append_target = self.cache / "wasm" / f"append-{tag}.txt"
        append_target.write_text("append here\n")
        tcp = Listener(socket.AF_INET, ("127.0.0.1", 0))
        unix = Listener(socket.AF_UNIX, f"\0cortex-probe-listener-{tag}")
        config = {
            "layers": list(layers), "parent": os.getpid(), "data_limit": DATA_LIMIT,
            "core": BASELINE_CORE, "nofile": BASELINE_NOFILE,
            "read_paths": [str(self.cache / "wasm"), str(self.cache / "compiled")],
            "tcp_port": tcp.address[1], "abstract_listener": f"\0cortex-probe-listener-{tag}",
            "abstract_own": f"\0cortex-probe-own-{tag}", "victim": self.victim.pid,
            "home_file": str(self.home_file), "cache_file": str(self.cache / "wasm" / "readable.txt"),
            "tmp_write": str(tmp_write), "cache_write": str(self.cache / "wasm" / f"created-{tag}"),
            "cache_append": str(append_target), "exec_marker": EXEC_MARKER,
        }
        # The control gets a secret in its environment; confined probes start empty, like workers.
        env = {} if layers else {"CORTEX_PROBE_SECRET": SECRET}
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", PROBE_SCRIPT, str(REPO), json.dumps(config)],
                env=env, capture_output=True, text=True, timeout=60,
            )
        finally:
            tcp_connections = tcp.close()
            unix_connections = unix.close()
        lines = proc.stdout.splitlines()
        assert proc.returncode == 0 and lines, (
            f"probe {layers} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        report = json.loads(lines[0])
        tail = lines[1:]
        if tail == [EXEC_MARKER]:
            execv: dict[str, Any] = {"ok": True, "value": EXEC_MARKER}
        else:
            assert len(tail) == 1, f"unexpected probe output after the report: {tail}"
            execv = json.loads(tail[0])["execv"]
        return ProbeRun(layers, config, report, execv, tcp_connections, unix_connections, proc.stderr)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeSite]:
    root = tmp_path_factory.mktemp("confinement")
    cache = root / "cache"
    (cache / "wasm").mkdir(parents=True)
    (cache / "compiled").mkdir()
    (cache / "wasm" / "readable.txt").write_text("the cache is readable\n")
    fd, home_name = tempfile.mkstemp(prefix=".cortex-probe-", dir=Path.home())
    os.write(fd, SECRET.encode())
    os.close(fd)
    victim = subprocess.Popen(["/bin/sleep", "120"], env={"CORTEX_PROBE_SECRET": SECRET})
    probe_site = ProbeSite(root, cache, Path(home_name), victim)
    try:
        yield probe_site
    finally:
        victim.kill()
        victim.wait()
        Path(home_name).unlink(missing_ok=True)
        for path in probe_site.tmp_files:
            path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def control(site: ProbeSite) -> ProbeRun:
    return site.run(())


@pytest.fixture(scope="module")
def confined(site: ProbeSite) -> ProbeRun:
    return site.run(ALL_LAYERS)


# -- helpers ------------------------------------------------------------------------------------

DENIED = frozenset({"EPERM", "EACCES"})


def blocked_problem(run: ProbeRun, control: ProbeRun, attempt: str,
                    errnos: frozenset[str] | set[str] = DENIED) -> str | None:
    """None if the attempt works unconfined and fails with one of ``errnos`` inside ``run``."""
    base, got = control[attempt], run[attempt]
    assert base["ok"], f"control: {attempt} must work unconfined, or the probe proves nothing: {base}"
    if got["ok"]:
        return f"LAYER DOES NOT HOLD: {attempt} succeeded under {run.layers}: {got}"
    if got["errno"] not in errnos:
        return f"{attempt} failed, but not as denied ({sorted(errnos)}): {got}"
    return None


def assert_blocked(run: ProbeRun, control: ProbeRun, *attempts: str,
                   errnos: frozenset[str] | set[str] = DENIED) -> None:
    """Every attempt works unconfined and fails inside ``run``; lists every one that does not."""
    problems = [p for a in attempts if (p := blocked_problem(run, control, a, errnos)) is not None]
    assert problems == [], "\n".join(problems)


def assert_reaches_kernel_only_unconfined(run: ProbeRun, control: ProbeRun, attempt: str,
                                          errnos: frozenset[str] = frozenset({"EPERM", "ENOSYS"})) -> None:
    """For syscalls whose harmless control call is refused by the kernel on its arguments (EFAULT,
    EINVAL): unconfined the call gets past any filter; confined it is refused as ``errnos``."""
    base, got = control[attempt], run[attempt]
    assert base["ok"] or base["errno"] not in ("EPERM", "ENOSYS"), (
        f"control: {attempt} did not reach the kernel unconfined: {base}")
    assert not got["ok"], f"LAYER DOES NOT HOLD: {attempt} succeeded under {run.layers}: {got}"
    assert got["errno"] in errnos, f"{attempt}: expected {sorted(errnos)}, got {got}"


# -- the fully confined probe ------------------------------------------------------------------


def test_the_probe_applies_every_layer(confined: ProbeRun, control: ProbeRun) -> None:
    layers = confined.report["layers"]
    assert [layer["name"] for layer in layers] == list(ALL_LAYERS)
    inactive = [layer for layer in layers if not layer["active"]]
    assert inactive == [], f"layers not in force: {inactive}"
    assert control.report["layers"] == []


def test_sockets_cannot_be_created(confined: ProbeRun, control: ProbeRun) -> None:
    assert_blocked(confined, control, "socket_tcp", "socket_udp", "socket_unix", "socketpair",
                   "abstract_unix_bind", errnos={"EPERM"})


def test_tcp_connect_to_a_listener_on_the_host_fails(confined: ProbeRun, control: ProbeRun) -> None:
    assert_blocked(confined, control, "tcp_connect")
    assert control.tcp_connections == 1
    assert confined.tcp_connections == 0, "the host's listener saw a connection from the confined probe"


def test_abstract_unix_connect_to_a_listener_outside_fails(confined: ProbeRun, control: ProbeRun) -> None:
    assert_blocked(confined, control, "unix_connect")
    assert control.unix_connections == 1
    assert confined.unix_connections == 0


def test_exec_fails(confined: ProbeRun, control: ProbeRun) -> None:
    assert control["execv"] == {"ok": True, "value": EXEC_MARKER}
    assert_blocked(confined, control, "execv", errnos={"EPERM"})
    assert_blocked(confined, control, "subprocess_true", errnos={"EPERM"})
    assert control["subprocess_true"]["value"] == 0


def test_fork_fails_but_threads_work(confined: ProbeRun, control: ProbeRun) -> None:
    assert_blocked(confined, control, "fork", errnos={"EPERM"})
    assert control["fork"]["value"] == 0  # the control's child exited at once, and was reaped
    assert control["thread"] == {"ok": True, "value": True}
    assert confined["thread"] == {"ok": True, "value": True}, confined["thread"]


def test_ptrace_fails(confined: ProbeRun, control: ProbeRun) -> None:
    assert_blocked(confined, control, "ptrace_seize", errnos={"EPERM"})


def test_signals_cannot_reach_the_parent_or_other_processes(confined: ProbeRun, control: ProbeRun) -> None:
    assert_blocked(confined, control, "kill_parent_0", "kill_parent_cont", "kill_victim_0",
                   "sigqueue_parent", "tgsigqueue_parent", errnos={"EPERM"})


def test_other_processes_limits_and_scheduling_cannot_be_changed(
    confined: ProbeRun, control: ProbeRun
) -> None:
    """kill() is refused, but prlimit(RLIMIT_CPU) on a process of the same user kills it just as
    well (SIGKILL at the hard limit), and setpriority/sched_setaffinity starve it."""
    assert_blocked(confined, control, "prlimit_victim", "prlimit_parent_read", "setpriority_victim",
                   "setaffinity_victim", errnos={"EPERM", "EACCES"})


def test_mount_unshare_bpf_io_uring_keyctl_fail(confined: ProbeRun, control: ProbeRun) -> None:
    for attempt in ("mount", "unshare", "bpf", "io_uring_setup", "keyctl"):
        assert_reaches_kernel_only_unconfined(confined, control, attempt)
    # the controls that can succeed harmlessly did
    for attempt in ("unshare", "io_uring_setup", "keyctl"):
        assert control[attempt]["ok"], control[attempt]


def test_files_outside_the_allowed_paths_cannot_be_read(
    confined: ProbeRun, control: ProbeRun, site: ProbeSite
) -> None:
    assert_blocked(confined, control, "read_passwd", errnos={"EACCES"})
    assert_blocked(confined, control, "read_home", errnos={"EACCES"})
    assert str(site.home_file).startswith(str(Path.home()))
    # ... while the cache the runtime grants stays readable
    assert confined["read_cache"] == {"ok": True, "value": len("the cache is readable\n")}


def test_no_file_can_be_written(confined: ProbeRun, control: ProbeRun) -> None:
    assert_blocked(confined, control, "write_tmp", "write_cache", "append_cache", errnos={"EACCES"})
    for run, written in ((control, True), (confined, False)):
        assert Path(run.config["tmp_write"]).exists() is written
        assert Path(run.config["cache_write"]).exists() is written
        appended = Path(run.config["cache_append"]).read_text() != "append here\n"
        assert appended is written


def test_wasmtime_still_works_inside(confined: ProbeRun, control: ProbeRun) -> None:
    assert control["wasm"] == {"ok": True, "value": 5050}
    assert confined["wasm"] == {"ok": True, "value": 5050}, confined["wasm"]
    # clone3 reaches the kernel unconfined (EINVAL for a NULL argument) but is ENOSYS inside, so
    # that libc falls back to clone(CLONE_THREAD), which threads (and Wasmtime's) still use.
    assert control["clone3"]["errno"] == "EINVAL", control["clone3"]
    assert confined["clone3"]["errno"] == "ENOSYS", confined["clone3"]
    assert confined["thread"]["ok"]


def test_rlimits(confined: ProbeRun, control: ProbeRun) -> None:
    limits = confined.report["rlimits"]
    assert limits["CORE"] == [0, 0]
    assert limits["DATA"] == [DATA_LIMIT, DATA_LIMIT]
    assert limits["NOFILE"] == [4096, 4096]
    baseline = control.report["rlimits"]
    assert baseline["CORE"] == [BASELINE_CORE, BASELINE_CORE]
    assert baseline["NOFILE"] == [BASELINE_NOFILE, BASELINE_NOFILE]
    assert baseline["DATA"] != [DATA_LIMIT, DATA_LIMIT]


def test_network_namespace_has_only_loopback(confined: ProbeRun, control: ProbeRun) -> None:
    ours = os.readlink("/proc/self/ns/net")
    with open("/proc/self/net/dev") as f:
        our_interfaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    assert control.report["net_ns"] == ours
    assert control.report["net_dev"] == our_interfaces  # the probe reads the table correctly
    assert confined.report["net_ns"] != ours
    assert confined.report["net_dev"] == ["lo"]


# -- each wall alone ----------------------------------------------------------------------------

LANDLOCK_ALONE = ("pdeathsig", "no_new_privs", "landlock")
SECCOMP_ALONE = ("pdeathsig", "no_new_privs", "seccomp")
NETNS_ALONE = ("pdeathsig", "netns")


def test_landlock_alone_holds(site: ProbeSite, control: ProbeRun) -> None:
    run = site.run(LANDLOCK_ALONE)
    assert all(layer["active"] for layer in run.report["layers"]), run.report["layers"]
    assert_blocked(run, control, "tcp_connect", errnos={"EACCES"})
    assert run.tcp_connections == 0
    assert_blocked(run, control, "unix_connect", errnos={"EPERM"})
    assert run.unix_connections == 0
    assert_blocked(run, control, "kill_parent_0", "kill_parent_cont", "kill_victim_0",
                   "sigqueue_parent", "tgsigqueue_parent", "ptrace_seize", errnos={"EPERM"})
    assert_blocked(run, control, "read_passwd", "read_home", "write_tmp", "write_cache",
                   "append_cache", "execv", "subprocess_true", errnos={"EACCES"})
    assert run["read_cache"]["ok"] and run["wasm"] == {"ok": True, "value": 5050}


def test_seccomp_alone_holds(site: ProbeSite, control: ProbeRun) -> None:
    run = site.run(SECCOMP_ALONE)
    assert all(layer["active"] for layer in run.report["layers"]), run.report["layers"]
    assert_blocked(run, control, "socket_tcp", "socket_udp", "socket_unix", "socketpair",
                   "abstract_unix_bind", "tcp_connect", "unix_connect", "execv", "subprocess_true",
                   "fork", "ptrace_seize", "kill_parent_0", "kill_parent_cont", "kill_victim_0",
                   "sigqueue_parent", "tgsigqueue_parent", errnos={"EPERM"})
    for attempt in ("mount", "unshare", "bpf", "io_uring_setup", "keyctl"):
        assert_reaches_kernel_only_unconfined(run, control, attempt)
    assert run.tcp_connections == 0 and run.unix_connections == 0
    assert run["thread"] == {"ok": True, "value": True}
    assert run["wasm"] == {"ok": True, "value": 5050}


def test_network_namespace_alone_holds(site: ProbeSite, control: ProbeRun) -> None:
    run = site.run(NETNS_ALONE)
    assert all(layer["active"] for layer in run.report["layers"]), run.report["layers"]
    unreachable = {"ENETUNREACH", "ECONNREFUSED", "EHOSTUNREACH", "ETIMEDOUT"}
    assert_blocked(run, control, "tcp_connect", errnos=unreachable)
    assert_blocked(run, control, "unix_connect", errnos=unreachable)  # abstract names are per netns
    assert run.tcp_connections == 0 and run.unix_connections == 0
    assert run.report["net_dev"] == ["lo"]


# -- the real runtime ---------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@pytest.mark.anyio
async def test_runtime_workers_have_an_empty_environment_and_every_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site: ProbeSite, control: ProbeRun
) -> None:
    monkeypatch.setenv("CORTEX_PROBE_SECRET", SECRET)
    # the way of looking works: the control probe saw its secret, psutil reads a process's secret
    assert control.report["environ"]["CORTEX_PROBE_SECRET"] == SECRET
    assert psutil.Process(site.victim.pid).environ() == {"CORTEX_PROBE_SECRET": SECRET}
    limit = 2 * 1024**3 + 8192
    async with Runtime(workers=1, spare_workers=1, cache_dir=tmp_path / "cache",
                       worker_memory_limit=limit) as rt:
        layers = {layer["name"]: layer for layer in rt.confinement}
        assert set(layers) == set(ALL_LAYERS)
        inactive = [layer for layer in layers.values() if not layer["active"]]
        assert inactive == [], f"layers not in force in the runtime's workers: {inactive}"
        pids = rt.worker_pids
        assert len(pids) == 2
        our_netns = os.readlink("/proc/self/ns/net")
        for pid in pids:
            worker = psutil.Process(pid)
            assert worker.environ() == {}
            # seen from outside: the layers the worker reported are in force
            status = proc_status(pid)
            assert status["NoNewPrivs"] == "1"
            assert status["Seccomp"] == "2"
            assert os.readlink(f"/proc/{pid}/ns/net") != our_netns
            assert worker.rlimit(resource.RLIMIT_CORE) == (0, 0)
            assert worker.rlimit(resource.RLIMIT_NOFILE) == (4096, 4096)
            assert worker.rlimit(resource.RLIMIT_DATA) == (limit, limit)


@pytest.mark.anyio
async def test_require_confinement_starts_when_every_layer_is_available(tmp_path: Path) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       require_confinement=True) as rt:
        assert [layer["name"] for layer in rt.confinement] == list(ALL_LAYERS)
        assert all(layer["active"] for layer in rt.confinement)
        assert len(rt.worker_pids) == 1


@pytest.mark.anyio
async def test_unconfined_workers_report_only_pdeathsig(tmp_path: Path) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache", confine=False) as rt:
        assert [(layer["name"], layer["active"]) for layer in rt.confinement] == [("pdeathsig", True)]
        (pid,) = rt.worker_pids
        # the outside checks of the confined test do see the difference
        status = proc_status(pid)
        assert status["NoNewPrivs"] == "0"
        assert status["Seccomp"] == "0"
        assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
        assert psutil.Process(pid).environ() == {}

