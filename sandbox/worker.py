"""The worker process: confine itself, then read a request frame, act on it, reply, repeat.

Started by the supervisor as ``python -I -c ... <in-fd> <out-fd> <parent-pid> <options-json>``. It
exits when the request channel closes, on a ``shutdown`` request, or when its parent dies.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import os
import select
import sys
import time
from typing import Any

from . import confine
from .framing import (
    ATTACHMENT,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    FrameDecoder,
    FrameError,
    attachment_frame_head,
    encode_frame,
    write_all,
    write_all_parts,
)
from .residency import LibraryCode, fix_mmap_threshold

#: A compiled artifact larger than this is not sent back for caching (it would not fit a frame).
MAX_ARTIFACT_BYTES = 20 * 1024 * 1024
DEFAULT_DATA_LIMIT = 6 * 1024**3
#: Failures after which the worker retires (the supervisor's FATAL_KINDS).
FATAL_KINDS = frozenset({"trap", "fuel", "timeout", "memory"})
#: Requests up to this size reuse one read buffer; it stays resident (up to this much) in a
#: worker that has had one. Larger ones get a buffer of their own each.
KEEP_LARGE_FRAME_BYTES = 2 * 1024 * 1024


def yield_to_supervisor() -> None:
    """Run under SCHED_BATCH: a woken worker then does not preempt the task that woke it.

    Under the default policy, the supervisor's write of a request woke the worker on the
    supervisor's own CPU and the worker ran at once, before the write returned: the supervisor
    sat out every call (89 µs per write at concurrency 64, 5 µs with this) instead of preparing
    the next while the worker ran on the other core. It also keeps untrusted work from preempting
    the application. Unprivileged, and only this process is affected."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not Linux
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def poll_briefly(waiting: select.poll, seconds: float) -> None:
    """Poll for the next request for up to ``seconds`` before blocking on it (``Runtime``'s
    ``worker_spin``): a request written within then is read without waking an idle CPU, which
    on this 2-core VM costs a back-to-back call ~45 µs (a tiny call's p50 159 → 114 µs). Each turn
    yields to any other task runnable on this CPU, so the supervisor is not kept waiting."""
    deadline = time.perf_counter() + seconds
    while not waiting.poll(0) and time.perf_counter() < deadline:
        os.sched_yield()


def main(argv: list[str]) -> None:
    import json

    in_fd, out_fd, parent_pid = int(argv[0]), int(argv[1]), int(argv[2])
    options: dict[str, Any] = json.loads(argv[3]) if len(argv) > 3 and argv[3] else {}
    confined = bool(options.get("confine", True))
    # The compiler compiles modules for the supervisor's cache and runs no guest code at all;
    # a serving worker runs plugins and never hands back compiled code (docs/security.md).
    compiler = options.get("role") == "compiler"

    # 1-3: before any thread exists and before anything touches a plugin.
    layers = [confine.die_with_parent(parent_pid, pdeathsig=bool(options.get("pdeathsig", True)))]
    if confined:
        layers.append(confine.enter_namespaces())
        layers.append(confine.set_rlimits(data_bytes=int(options.get("data_limit", DEFAULT_DATA_LIMIT))))
    confine.close_inherited_fds({in_fd, out_fd})
    confine.silence_stdio()
    sys.stdout = sys.stderr  # anything that prints goes to the diagnostics pipe

    # 4: the engines, while files and syscalls are still open.
    fix_mmap_threshold()
    yield_to_supervisor()
    import orjson

    from . import PREPARED_PLUGINS
    from .engine import (
        WASMTIME_VERSION,
        LoadedPlugin,
        LoadError,
        engine_fingerprint,
        library_path,
    )
    from .execute import CallFailed, Executor

    compiler_code = LibraryCode.of(library_path())
    executor = Executor(prepared_plugins=int(options.get("prepared_plugins", PREPARED_PLUGINS)))
    if confined:
        confine.preload()
    plugins: dict[str, LoadedPlugin] = {}
    confine.watch_parent(parent_pid)

    # 5-7: no new privileges, Landlock, seccomp last.
    if confined:
        layers.append(confine.no_new_privs())
        layers.append(confine.landlock([*confine.python_read_paths(), *options.get("read_paths", [])]))
        layers.append(confine.seccomp())
    missing = [layer for layer in layers if not layer.active]

    def send(message: dict[str, Any]) -> None:
        # A large result is the frame's attachment, written from guest memory where it lies.
        attachment: memoryview | None = message.pop(ATTACHMENT, None)
        try:
            body = orjson.dumps(message)
            if attachment is not None:
                write_all_parts(out_fd, [attachment_frame_head(body, len(attachment)), attachment])
                return
            frame = encode_frame(body)
        except FrameError as exc:
            # Output and logs within their caps can still add up past the frame limit.
            frame = encode_frame({"id": message.get("id"), "ok": False, "error": {
                "kind": "invalid_output", "message": f"the reply is too large to send: {exc}"}})
        write_all(out_fd, frame)

    hello = {"op": "hello", "pid": os.getpid(), "protocol": PROTOCOL_VERSION,
             "wasmtime": WASMTIME_VERSION, "engine": engine_fingerprint(),
             "layers": [layer.as_dict() for layer in layers]}
    if confined and options.get("require_all") and missing:
        names = ", ".join(f"{layer.name} ({layer.detail})" for layer in missing)
        send({"op": "fatal", "error": {"kind": "confinement",
                                       "message": f"required confinement unavailable: {names}"}})
        return
    send(hello)

    # After a fault (trap, fuel, deadline, memory, host error) this worker runs nothing more:
    # calls already queued behind it are answered "retired" (they did not run) and the supervisor
    # sends them elsewhere and replaces this process.
    retiring = False
    # Requests are handled one at a time, each before the next read: a large input can be read
    # into one buffer kept for it (its pages already faulted in), not a fresh one per call.
    decoder = FrameDecoder(limit=MAX_FRAME_BYTES, keep_large=KEEP_LARGE_FRAME_BYTES)
    inbox: collections.deque[dict[str, Any]] = collections.deque()
    compiled_since_release = False

    spin = float(options.get("spin", 0.0))

    last_batch = 0

    def next_request() -> dict[str, Any]:
        nonlocal compiled_since_release, last_batch
        # Several pipelined requests usually arrive in one read.
        while not inbox:
            if compiled_since_release:  # idle: give back the compiler's code pages
                compiled_since_release = False
                compiler_code.release()
            # Poll first only after a read that brought one request: calls one at a time, where
            # the next comes within the supervisor's turnaround. Under load (pipelined batches)
            # polling bought nothing and cost ~2.6% of throughput at concurrency 64.
            if spin and last_batch == 1:
                poll_briefly(waiting, spin)
            messages = decoder.read_from(in_fd)
            if messages is None:
                raise EOFError
            last_batch = len(messages)
            inbox.extend(messages)
        return inbox.popleft()

    waiting = select.poll()
    waiting.register(in_fd, select.POLLIN)

    def idle() -> bool:
        # No request read and none in the pipe: a request already sent (e.g. a plugin's first
        # call right behind its load) should not wait while this worker makes an instance.
        return not inbox and not waiting.poll(0)

    def prepare(plugin: LoadedPlugin, limits: dict[str, Any], *, requested: bool) -> None:
        # A prepare the supervisor asked for (a load, a warming spare) counts as a use.
        if requested:
            executor.expect(plugin.digest)
        executor.prepare(plugin, fuel=int(limits["fuel"]), timeout_ms=float(limits["timeout_ms"]),
                         min_pages=int(limits["min_pages"]), max_pages=int(limits["max_pages"]),
                         max_log=int(limits["max_log"]))

    while True:
        try:
            request = next_request()
        except EOFError:
            return
        except FrameError as exc:
            send({"op": "fatal", "error": {"kind": "protocol", "message": str(exc)}})
            return
        op = request.get("op")
        call_id = request.get("id")
        if (op == "compile") != compiler and op in ("call", "load", "prepare", "compile"):
            role = "the compiler" if compiler else "a serving worker"
            send({"op": "fatal", "error": {"kind": "protocol", "message": f"{op!r} sent to {role}"}})
            return
        if retiring and op in ("call", "load", "prepare"):
            send({"id": call_id, "ok": False, "error": {
                "kind": "retired", "message": "the worker retired after a fault; the request did not run"}})
            continue
        if op == "call":
            plugin = plugins.get(request.get("digest", ""))
            export = request.get("export")
            if plugin is None:
                send({"id": call_id, "ok": False,
                      "error": {"kind": "not_loaded", "message": "plugin is not loaded here"}})
                continue
            if export not in plugin.capabilities:
                send({"id": call_id, "ok": False,
                      "error": {"kind": "no_capability", "message": f"no capability {export!r}"}})
                continue
            payload = request.get(ATTACHMENT)
            if not isinstance(payload, (bytes, memoryview)):
                send({"op": "fatal", "error": {"kind": "protocol",
                                               "message": "a call frame without its input attachment"}})
                return
            try:
                fields, ctx = executor.call(
                    plugin, export, payload,
                    fuel=int(request["fuel"]), timeout_ms=float(request["timeout_ms"]),
                    min_pages=int(request["min_pages"]), max_pages=int(request["max_pages"]),
                    allocator=str(request["allocator"]), max_output=int(request["max_output"]),
                    max_log=int(request["max_log"]),
                )
            except Exception as unexpected:  # never let one call take the worker down silently
                failed = unexpected if isinstance(unexpected, CallFailed) else CallFailed(
                    "trap", f"the host failed while running the call: {unexpected!r}",
                    trap_code="host_error")
                retiring = failed.kind in FATAL_KINDS or failed.trap_code == "host_error"
                last = executor.last_context
                send({"id": call_id, "ok": False,
                      "error": {"kind": failed.kind, "message": failed.message,
                                "trap_code": failed.trap_code, "backtrace": failed.backtrace},
                      "fuel_used": executor.last_fuel_used,
                      "logs": last.logs if last else [],
                      "dropped_logs": last.dropped_logs if last else 0})
                executor.release()
                continue
            # Idle after this: make the plugin's next fresh instance ahead of time (same limits),
            # if it is called often enough to use it. With a request already waiting (read or in
            # the pipe), that request instantiates for itself instead. The reply says so (a hint
            # for the pool).
            prepare_next = executor.worth_preparing(plugin) and idle()
            fields.update(id=call_id, ok=True, logs=ctx.logs, dropped_logs=ctx.dropped_logs,
                          prepared=prepare_next)
            send(fields)
            executor.release()
            if prepare_next:
                prepare(plugin, request, requested=False)
        elif op == "load":
            digest = str(request.get("digest", ""))
            artifact = request.get("artifact")
            try:
                plugin = executor.load(str(request["path"]), digest,
                                       str(artifact) if artifact else None,
                                       str(request.get("memory_init") or "") or None)
            except LoadError as exc:
                compiled_since_release = True  # a failed compile may have run Cranelift too
                send({"id": call_id, "ok": False,
                      "error": {"kind": "load", "message": str(exc), "field": exc.field}})
                continue
            plugins[digest] = plugin
            compiled_since_release |= plugin.facts.get("cache") == "miss"
            # With "prepare", make the next call's instance once the reply is out (unless a
            # request is already waiting: it then instantiates for itself).
            limits = request.get("prepare")
            prepare_next = isinstance(limits, dict) and executor.prepared_plugins > 0 and idle()
            loaded: dict[str, Any] = {"id": call_id, "ok": True, "prepared": prepare_next}
            if request.get("facts", True) is not False:  # left out when the supervisor knows them
                loaded["facts"] = plugin.facts
            send(loaded)
            if prepare_next and isinstance(limits, dict):
                prepare(plugin, limits, requested=True)
        elif op == "compile":
            # Compile, describe and link-check (no instance, so no guest code), send back the
            # compiled code, keep nothing.
            try:
                compiled = executor.load(str(request["path"]), str(request.get("digest", "")))
            except LoadError as exc:
                send({"id": call_id, "ok": False,
                      "error": {"kind": "load", "message": str(exc), "field": exc.field}})
                continue
            finally:
                compiled_since_release = True
            reply: dict[str, Any] = {"id": call_id, "ok": True, "facts": compiled.facts}
            blob = bytes(compiled.module.serialize())
            if len(blob) <= MAX_ARTIFACT_BYTES:
                reply["artifact_b64"] = base64.b64encode(blob).decode("ascii")
            del compiled
            send(reply)
        elif op == "prepare":
            plugin = plugins.get(str(request.get("digest", "")))
            prepared = plugin is not None and executor.prepared_plugins > 0
            if plugin is not None:
                prepare(plugin, request, requested=True)
            send({"id": call_id, "ok": plugin is not None, "prepared": prepared})
        elif op == "unload":
            # One request for several plugins: the supervisor drops them from its view at once,
            # and one frame keeps a later load of any of them behind it in the pipe.
            digests = request.get("digests")
            for digest in digests if isinstance(digests, list) else [request.get("digest", "")]:
                executor.forget(str(digest), plugins.pop(str(digest), None))
            send({"id": call_id, "ok": True, "plugins": len(plugins)})
        elif op == "ping":
            send({"id": call_id, "ok": True, "plugins": len(plugins)})
        elif op == "shutdown":
            return
        else:
            send({"op": "fatal", "error": {"kind": "protocol", "message": f"unknown op {op!r}"}})
            return


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(0)
