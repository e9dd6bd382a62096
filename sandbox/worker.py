"""The worker process: read a request frame, act on it, write one response frame, repeat.

Started by the supervisor as ``python -I -c ... <in-fd> <out-fd> <parent-pid> <cache-dir>``. It
exits when the request channel closes, on a ``shutdown`` request, or when its parent dies.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import confine
from .framing import PROTOCOL_VERSION, FrameError, encode_frame, read_frame, write_all


def main(argv: list[str]) -> None:
    in_fd, out_fd, parent_pid = int(argv[0]), int(argv[1]), int(argv[2])
    cache_dir = argv[3] if len(argv) > 3 and argv[3] else None
    confine.die_with_parent(parent_pid)
    confine.close_inherited_fds({in_fd, out_fd})
    confine.silence_stdio()
    sys.stdout = sys.stderr  # anything that prints goes to the diagnostics pipe

    import orjson

    from .engine import (
        WASMTIME_VERSION,
        LoadedPlugin,
        LoadError,
        ModuleCache,
        load_plugin,
        make_engine,
    )
    from .execute import CallFailed, Executor

    engine = make_engine()
    cache = ModuleCache(cache_dir, engine)
    executor = Executor(engine)
    plugins: dict[str, LoadedPlugin] = {}

    def send(message: dict[str, Any]) -> None:
        try:
            frame = encode_frame(orjson.dumps(message))
        except FrameError as exc:
            # Output and logs within their caps can still add up past the frame limit.
            frame = encode_frame({"id": message.get("id"), "ok": False, "error": {
                "kind": "invalid_output", "message": f"the reply is too large to send: {exc}"}})
        write_all(out_fd, frame)

    send({"op": "hello", "pid": os.getpid(), "protocol": PROTOCOL_VERSION,
          "wasmtime": WASMTIME_VERSION})

    while True:
        try:
            request = read_frame(in_fd)
        except EOFError:
            return
        except FrameError as exc:
            send({"op": "fatal", "error": {"kind": "protocol", "message": str(exc)}})
            return
        op = request.get("op")
        call_id = request.get("id")
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
            try:
                fields, ctx = executor.call(
                    plugin, export, str(request["input_json"]).encode("utf-8"),
                    fuel=int(request["fuel"]), timeout_ms=float(request["timeout_ms"]),
                    min_pages=int(request["min_pages"]), max_pages=int(request["max_pages"]),
                    allocator=str(request["allocator"]), max_output=int(request["max_output"]),
                    max_log=int(request["max_log"]),
                )
            except Exception as unexpected:  # never let one call take the worker down silently
                failed = unexpected if isinstance(unexpected, CallFailed) else CallFailed(
                    "trap", f"the host failed while running the call: {unexpected!r}",
                    trap_code="host_error")
                last = executor.last_context
                send({"id": call_id, "ok": False,
                      "error": {"kind": failed.kind, "message": failed.message,
                                "trap_code": failed.trap_code, "backtrace": failed.backtrace},
                      "fuel_used": executor.last_fuel_used,
                      "logs": last.logs if last else [],
                      "dropped_logs": last.dropped_logs if last else 0})
                continue
            fields.update(id=call_id, ok=True, logs=ctx.logs, dropped_logs=ctx.dropped_logs)
            send(fields)
        elif op == "load":
            digest = str(request.get("digest", ""))
            try:
                plugin = load_plugin(engine, executor.linker, cache, str(request["path"]), digest)
            except LoadError as exc:
                send({"id": call_id, "ok": False,
                      "error": {"kind": "load", "message": str(exc), "field": exc.field}})
                continue
            plugins[digest] = plugin
            send({"id": call_id, "ok": True, "facts": plugin.facts})
        elif op == "unload":
            plugins.pop(str(request.get("digest", "")), None)
            send({"id": call_id, "ok": True})
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
