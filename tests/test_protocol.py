"""The supervisor/worker frame protocol: the decoder, and a supervisor facing hostile workers.

A compromised worker must never crash the supervisor or hang a caller: whatever it sends, the call
ends in ``ProtocolError`` (or ``CallTimeout`` for silence), the worker is replaced, and the pool
keeps serving.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import wait_for, write_plugin

import cortex_runtime.placement as placement_module
import cortex_runtime.worker as worker_module
from cortex_runtime import Runtime
from cortex_runtime.errors import (
    CallTimeout,
    FuelExhausted,
    InvalidOutput,
    PluginTrap,
    ProtocolError,
    WorkerCrashed,
)
from sandbox.framing import (
    LARGE_FRAME_BYTES,
    READ_BYTES,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_frame_with_attachment,
    read_exactly,
    write_all,
    write_all_parts,
)

# -- the decoder --------------------------------------------------------------------------------

json_objects = st.dictionaries(
    st.text(max_size=10),
    st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                             max_size=4),
                 max_leaves=10),
    max_size=5,
)


def test_reading_from_a_descriptor_reuses_one_buffer_and_reports_end_of_file() -> None:
    read_end, write_end = os.pipe()
    try:
        _widen(write_end)
        os.set_blocking(read_end, False)
        decoder = FrameDecoder()
        with pytest.raises(BlockingIOError):
            decoder.read_from(read_end)  # nothing yet
        big = {"text": "x" * (READ_BYTES * 3)}  # spans several reads
        stream = encode_frame({"a": 1}) + encode_frame(big) + encode_frame({"b": 2})
        received: list[dict[str, object]] = []
        sent = 0
        while len(received) < 3:
            if sent < len(stream):
                sent += os.write(write_end, stream[sent:sent + 100_000])
            with contextlib.suppress(BlockingIOError):
                messages = decoder.read_from(read_end)
                assert messages is not None
                received.extend(messages)
        assert received == [{"a": 1}, big, {"b": 2}] and decoder.pending == 0
        os.write(write_end, encode_frame({"c": 3})[:3])  # a partial header, then the peer leaves
        os.close(write_end)
        write_end = -1
        assert decoder.read_from(read_end) == [] and decoder.pending == 3
        assert decoder.read_from(read_end) is None
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe's (read end, write end), both closed after the test."""
    read_end, write_end = os.pipe()
    try:
        yield read_end, write_end
    finally:
        os.close(read_end)
        os.close(write_end)


def _widen(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer round trips for the big frame


@given(st.lists(json_objects, min_size=1, max_size=5), st.data())
def test_frames_survive_any_chunking(messages: list[dict[str, object]], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    out: list[dict[str, object]] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[previous:cut]))
        previous = cut
    assert out == messages
    assert decoder.pending == 0


@given(st.binary(max_size=200))
def test_garbage_never_escapes_as_anything_but_frame_error(blob: bytes) -> None:
    decoder = FrameDecoder(limit=1024)
    try:
        for message in decoder.feed(blob):
            assert isinstance(message, dict)
    except FrameError:
        pass


def test_oversized_header_is_refused_before_reading_the_body() -> None:
    decoder = FrameDecoder(limit=1000)
    with pytest.raises(FrameError, match="over the 1000-byte limit"):
        decoder.feed(struct.pack(">I", 1001))


def test_non_object_bodies_are_refused() -> None:
    for body in (b"[1,2]", b"42", b'"x"', b"not json", b"\xff\xfe"):
        with pytest.raises(FrameError):
            FrameDecoder().feed(struct.pack(">I", len(body)) + body)


@given(st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), max_size=4),
       st.binary(max_size=300),
       st.integers(min_value=1, max_value=50))
def test_attachment_frames_round_trip_in_any_chunking(
    message: dict[str, int], attachment: bytes, step: int
) -> None:
    frame = encode_frame_with_attachment(orjson.dumps(message), attachment)
    decoder = FrameDecoder()
    got = []
    for i in range(0, len(frame), step):
        got.extend(decoder.feed(frame[i:i + step]))
    assert got == [dict(message, attachment=attachment)]


def test_malformed_or_unexpected_attachment_frames_are_refused() -> None:
    def frame(body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + body

    for body in (b"B", b"B\x00\x00", b"B\x00\x00\x00\x09{}", b"B\x00\x00\x00\x02[]xy",
                 b"B\x00\x00\x00\x0bB\x00\x00\x00\x02{}{}"):
        with pytest.raises(FrameError):
            FrameDecoder().feed(frame(body))
    # a decoder that takes no attachments refuses them
    with pytest.raises(FrameError, match="unexpected frame with an attachment"):
        FrameDecoder(attachments=False).feed(encode_frame_with_attachment(b"{}", b"x"))


@given(st.lists(st.sampled_from([10, LARGE_FRAME_BYTES - 40, LARGE_FRAME_BYTES, 200_000]),
                min_size=1, max_size=5),
       st.lists(st.one_of(st.integers(1, 9), st.integers(1000, 90_000)), min_size=1,
                max_size=20).filter(lambda steps: max(steps) >= 1000),
       st.booleans())
@settings(deadline=None)
def test_large_frames_in_their_own_buffer_survive_any_chunking(
    sizes: list[int], steps: list[int], keep: bool
) -> None:
    """Large frames (attachments of 64 KiB and more) are gathered in a buffer of their own, or
    one kept for them, between small ones; any cut of the stream gives the same messages."""
    attachments = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    stream = b"".join(encode_frame_with_attachment(orjson.dumps({"i": i}), a)
                      for i, a in enumerate(attachments))
    decoder = FrameDecoder(keep_large=1 << 20 if keep else 0)
    got: list[tuple[object, bytes]] = []
    position = 0
    step = 0
    while position < len(stream):
        cut = min(len(stream), position + steps[step % len(steps)])
        for message in decoder.feed(stream[position:cut]):
            got.append((message["i"], bytes(message["attachment"])))  # used before the next feed
        position = cut
        step += 1
    assert got == list(enumerate(attachments)) and decoder.pending == 0


def test_a_large_frame_is_read_straight_into_its_buffer_and_no_further(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    _widen(write_end)
    big = bytes(range(256)) * 2400  # 614 KB: more than one read of READ_BYTES
    small = encode_frame({"after": True})
    stream = encode_frame_with_attachment(b'{"i":1}', big) + small
    writer = threading.Thread(target=write_all, args=(write_end, stream))
    writer.start()
    decoder = FrameDecoder(keep_large=1 << 20)
    messages: list[dict[str, object]] = []
    while not messages:
        got = decoder.read_from(read_end)
        assert got is not None
        messages.extend(got)
    writer.join()
    (message,) = messages
    attachment = message["attachment"]
    assert isinstance(attachment, memoryview) and attachment == big
    # the next frame was left in the pipe for the next read, which takes the view back
    assert decoder.pending == 0 and decoder.read_from(read_end) == [{"after": True}]
    with pytest.raises(ValueError):
        bytes(attachment)


def test_write_all_parts_writes_every_part_in_order_through_short_writes(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    parts: list[bytes | memoryview] = [b"head", b"", memoryview(b"x" * 300_000), b"tail"]
    writer = threading.Thread(target=write_all_parts, args=(write_end, parts))
    writer.start()  # 300 KB through a 64 KiB pipe: several short writes
    received = read_exactly(read_end, 4 + 300_000 + 4)
    writer.join()
    assert received == b"head" + b"x" * 300_000 + b"tail"


def test_encode_refuses_frames_over_the_limit() -> None:
    with pytest.raises(FrameError):
        encode_frame({"x": "y" * 100}, limit=50)


# -- hostile workers ----------------------------------------------------------------------------

FAKE_WORKER = r"""
import os, sys, time, struct
sys.path.insert(0, sys.argv[1])
from sandbox.framing import read_frame, encode_frame, write_all
inp, out = int(sys.argv[2]), int(sys.argv[3])
write_all(out, encode_frame({"op": "hello", "pid": os.getpid(), "protocol": 1, "wasmtime": "fake"}))
MODE = %r
while True:
    req = read_frame(inp)
    if req["op"] in ("load", "prepare"):  # housekeeping goes well: the calls are the attack
        write_all(out, encode_frame({"id": req["id"], "ok": True, "facts": {}}))
        continue
    if MODE == "oversized":
        write_all(out, struct.pack(">I", 2**31))
    elif MODE == "attachment":  # only requests may carry one
        body = b'{"id":' + str(req["id"]).encode() + b',"ok":true,"result":1}'
        write_all(out, struct.pack(">IcI", 5 + len(body) + 3, b"B", len(body)) + body + b"abc")
    elif MODE in ("error_attachment", "large_result"):  # the input "bad" asks for a bad one
        ok = "false" if MODE == "error_attachment" else "true"
        body = b'{"id":' + str(req["id"]).encode() + b',"ok":' + ok.encode() + b',"logs":[]}'
        bad = req.get("attachment") == b'"bad"'
        result = b" " * 70000 + (b'{not json' if bad else b'"' + b"y" * 130000 + b'"')
        frame = struct.pack(">IcI", 5 + len(body) + len(result), b"B", len(body)) + body + result
        for i in range(0, len(frame), 50000):  # in pieces: the supervisor reads it in several
            write_all(out, frame[i:i + 50000])
            time.sleep(0.001)
    elif MODE == "unsolicited":  # answers, then says more than it was asked
        write_all(out, encode_frame({"id": req["id"], "ok": True, "result": "first", "logs": []}))
        time.sleep(0.05)
        write_all(out, encode_frame({"id": req["id"] + 1000, "ok": True, "result": "unasked"}))
    elif MODE == "garbage":
        write_all(out, struct.pack(">I", 9) + b"not json!")
    elif MODE == "wrong_id":
        write_all(out, encode_frame({"id": req["id"] + 1000, "ok": True, "result": 1}))
    elif MODE == "replayed_id":
        write_all(out, encode_frame({"id": req["id"] - 1, "ok": True, "result": 1}))
    elif MODE == "no_ok":
        write_all(out, encode_frame({"id": req["id"], "result": 1}))
    elif MODE == "error_without_kind":
        write_all(out, encode_frame({"id": req["id"], "ok": False, "error": "nope"}))
    elif MODE == "truncated":
        write_all(out, struct.pack(">I", 100) + b'{"id":')
        os._exit(0)
    elif MODE == "silent":
        time.sleep(3600)
    elif MODE == "drip":
        frame = encode_frame({"id": req["id"], "ok": True, "result": {"dripped": True}, "logs": []})
        for i in range(len(frame)):
            write_all(out, frame[i:i + 1])
            time.sleep(0.002)
"""

pytestmark = pytest.mark.anyio


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    return write_plugin(tmp_path / "plugins", "pool")


async def replace_worker_with_fake(rt: Runtime, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """The one worker traps (and is retired); the worker started in its place is FAKE_WORKER
    playing ``mode``."""
    monkeypatch.setattr(worker_module, "_BOOT", FAKE_WORKER % mode)
    with pytest.raises(PluginTrap):
        await rt.call("pool", "boom", {})


@pytest.mark.parametrize(
    "mode", ["oversized", "garbage", "wrong_id", "replayed_id", "no_ok", "error_without_kind",
             "truncated", "attachment", "error_attachment"]
)
async def test_misbehaving_worker_gives_protocol_error_and_is_replaced(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       quarantine_after=0) as rt:
        await rt.load(plugin_dir)
        await replace_worker_with_fake(rt, monkeypatch, mode)
        # A worker that dies mid-frame is a crash; everything else is a protocol violation.
        expected = WorkerCrashed if mode == "truncated" else ProtocolError
        with anyio.fail_after(10), pytest.raises(expected):
            await rt.call("pool", "echo", {"hello": 1})
        assert rt.stats["killed"] >= 2  # the real worker after its trap, then the fake one
        monkeypatch.undo()
        with anyio.fail_after(20):
            while True:  # a replacement spawned before undo() may still be a fake
                try:
                    assert await rt.call("pool", "echo", "real again") == "real again"
                    break
                except (ProtocolError, WorkerCrashed):
                    await anyio.sleep(0.05)


async def test_a_large_result_attachment_is_decoded_and_checked_by_the_supervisor(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large result crosses as the reply's attachment (here 200 KB, arriving in pieces). The
    supervisor decodes it; if it is not valid JSON, that is the plugin's invalid output (the
    worker does not check large results), not a protocol violation: nobody is killed."""
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       quarantine_after=0) as rt:
        await rt.load(plugin_dir)
        await replace_worker_with_fake(rt, monkeypatch, "large_result")
        with anyio.fail_after(10):
            assert await rt.call("pool", "echo", 1) == "y" * 130000
        killed = rt.stats["killed"]
        for _ in range(2):
            with anyio.fail_after(10), pytest.raises(InvalidOutput, match="not valid JSON"):
                await rt.call("pool", "echo", "bad")
            assert await rt.call("pool", "echo", "good") == "y" * 130000
        assert rt.stats["killed"] == killed


async def test_a_frame_nobody_asked_for_does_not_spin_the_event_loop(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On asyncio the reply pipe stays registered with the event loop between replies. Bytes
    that arrive while no request is outstanding must not leave it registered (level-triggered,
    it would wake the loop on every turn): the supervisor stays idle, and the unasked frame is
    a protocol violation once a request is outstanding."""
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       quarantine_after=0) as rt:
        await rt.load(plugin_dir)
        await replace_worker_with_fake(rt, monkeypatch, "unsolicited")
        assert await rt.call("pool", "echo", 1) == "first"
        (worker,) = rt._pool._ready
        await anyio.sleep(0.2)  # the unasked frame arrives 50 ms after the reply
        cpu = time.process_time()
        await anyio.sleep(0.3)
        assert time.process_time() - cpu < 0.1  # idle, not woken on every turn
        assert not worker._reader_registered
        with anyio.fail_after(10), pytest.raises(ProtocolError, match="answered request"):
            await rt.call("pool", "echo", 2)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio: anyio.wait_readable each time
async def test_the_reply_pipe_stays_registered_from_reply_to_reply(
    tmp_path: Path, plugin_dir: Path, anyio_backend: str
) -> None:
    """Level-triggered, the loop reports a reply's pipe readable once more before the task it
    woke has read it; that stale report must not unregister the pipe (an ``epoll_ctl`` pair
    and the selector's bookkeeping on every call)."""
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       supervisor_spin=0) as rt:
        await rt.load(plugin_dir)
        (worker,) = rt._pool._ready
        for i in range(20):
            assert await rt.call("pool", "echo", i) == i
            assert worker._reader_registered


async def test_silent_worker_is_killed_by_the_supervisor_backstop(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       quarantine_after=0, timeout_grace=0.2) as rt:
        await rt.load(plugin_dir)
        await replace_worker_with_fake(rt, monkeypatch, "silent")
        with anyio.fail_after(5), pytest.raises(CallTimeout, match="worker was killed"):
            await rt.call("pool", "echo", 1, timeout=0.3)


async def test_drip_fed_reply_is_reassembled(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       quarantine_after=0) as rt:
        await rt.load(plugin_dir)
        await replace_worker_with_fake(rt, monkeypatch, "drip")
        assert await rt.call("pool", "echo", 1, timeout=5) == {"dripped": True}


async def test_stray_stdout_in_the_worker_does_not_corrupt_the_channel(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy = "import os; os.write(1, b'garbage on stdout'); print('more garbage'); " + worker_module._BOOT
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache") as rt:
        await rt.load(plugin_dir)
        monkeypatch.setattr(worker_module, "_BOOT", noisy)
        with pytest.raises(PluginTrap):
            await rt.call("pool", "boom", {})
        for i in range(3):
            assert await rt.call("pool", "echo", {"i": i}) == {"i": i}


def test_worker_frames_are_json_objects() -> None:
    frame = encode_frame({"op": "ping", "id": 1})
    (length,) = struct.unpack(">I", frame[:4])
    assert orjson.loads(frame[4:]) == {"op": "ping", "id": 1}
    assert length == len(frame) - 4


async def test_a_call_frame_without_its_input_attachment_is_refused_by_the_worker(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker takes a call's input only from the frame's attachment; a call frame without
    one (an old or confused supervisor) ends the worker with a protocol error, not a guess."""
    monkeypatch.setattr(worker_module, "encode_frame_with_attachment",
                        lambda message, attachment: encode_frame(message))
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       quarantine_after=0) as rt:
        await rt.load(plugin_dir)
        with anyio.fail_after(10), pytest.raises(ProtocolError, match="without its input attachment"):
            await rt.call("pool", "echo", {"hello": 1})
        monkeypatch.undo()
        with anyio.fail_after(20):
            assert await rt.call("pool", "echo", "fine") == "fine"


# -- the worker's brief poll before it sleeps ------------------------------------------------------


def test_poll_briefly_returns_as_soon_as_a_request_is_readable(pipe: tuple[int, int]) -> None:
    from sandbox.worker import poll_briefly

    read_end, write_end = pipe
    waiting = select.poll()
    waiting.register(read_end, select.POLLIN)
    timer = threading.Timer(0.05, os.write, args=(write_end, b"x"))
    timer.start()
    started = time.monotonic()
    poll_briefly(waiting, 5.0)  # would poll for 5 s if nothing came
    assert time.monotonic() - started < 4.0 and waiting.poll(0)
    timer.join()
    started = time.monotonic()
    poll_briefly(waiting, 5.0)  # already readable: at once
    assert time.monotonic() - started < 4.0


def test_poll_briefly_gives_up_after_its_time_when_nothing_comes(pipe: tuple[int, int]) -> None:
    from sandbox.worker import poll_briefly

    read_end, _ = pipe
    waiting = select.poll()
    waiting.register(read_end, select.POLLIN)
    started = time.monotonic()
    poll_briefly(waiting, 0.02)
    assert time.monotonic() - started >= 0.02 and not waiting.poll(0)


@pytest.mark.parametrize("spin", [-0.001, 0.5, True, "fast"])
@pytest.mark.parametrize("name", ["worker_spin", "supervisor_spin"])
def test_spins_must_be_short_numbers_of_seconds(tmp_path: Path, name: str, spin: object) -> None:
    with pytest.raises(ValueError, match=name):
        Runtime(cache_dir=tmp_path, **{name: spin})  # type: ignore[arg-type]


@pytest.mark.parametrize(("worker_spin", "supervisor_spin"), [(0, 0), (0.001, 0), (0, 0.001),
                                                              (0.001, 0.001)])
async def test_calls_work_with_or_without_the_brief_polls(
    tmp_path: Path, plugin_dir: Path, worker_spin: float, supervisor_spin: float
) -> None:
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       worker_spin=worker_spin, supervisor_spin=supervisor_spin) as rt:
        await rt.load(plugin_dir)
        for i in range(20):
            assert await rt.call("pool", "echo", {"i": i}) == {"i": i}
            if i % 5 == 0:
                await anyio.sleep(0.01)  # past the poll: the worker sleeps and is woken


def count_turns(rt: Runtime) -> list[int]:
    """Count the turns of the event loop the supervisor takes to poll for replies."""
    turns = [0]
    for worker in rt._pool._all:
        original = worker._turn

        async def counting(original: Callable[[], Awaitable[None]] = original) -> None:
            turns[0] += 1
            await original()

        worker._turn = counting
    return turns


async def test_the_supervisor_polls_only_for_a_lone_quick_call(
    tmp_path: Path, plugin_dir: Path
) -> None:
    async with Runtime(workers=2, spare_workers=0, cache_dir=tmp_path / "cache",
                       supervisor_spin=0.01) as rt:
        await rt.load(plugin_dir)
        await rt.call("pool", "echo", 0)
        turns = count_turns(rt)
        for i in range(20):
            assert await rt.call("pool", "echo", i) == i
        assert turns[0] > 0  # polled for the lone calls' replies

        turns[0] = 0
        for i in range(5):
            for worker in rt._pool._ready:
                worker.service_time = 1.0  # a slow round trip, of quick work: still polled for
            assert await rt.call("pool", "echo", i) == i
        assert turns[0] > 0

        for worker in rt._pool._ready:
            worker.work_time = 1.0  # the worker's calls take longer than the window: sleep
        turns[0] = 0
        assert await rt.call("pool", "echo", "slow") == "slow"
        assert turns[0] == 0

        rt._pool.outstanding.spin = 0.0  # supervisor_spin=0
        for worker in rt._pool._ready:
            worker.service_time = worker.work_time = 0.0
        assert await rt.call("pool", "echo", "off") == "off"
        assert turns[0] == 0


def test_a_reply_is_polled_for_a_window_past_the_usual_round_trip() -> None:
    """The window stretches with the worker's round trip (a slower host, or a supervisor and
    worker that share a CPU), so that the supervisor keeps polling rather than sleep and be
    woken onto the worker's CPU; never past MAX_SPIN_WINDOWS windows."""
    window = worker_module.reply_poll_window
    assert window(200e-6, 0.0) == pytest.approx(200e-6)
    assert window(200e-6, 50e-6) == pytest.approx(250e-6)
    assert window(200e-6, 600e-6) == pytest.approx(800e-6)
    assert window(200e-6, 1.0) == pytest.approx(200e-6 * worker_module.MAX_SPIN_WINDOWS)


@pytest.mark.parametrize("worker_cpu, movable, moves",
                         [(7, True, [7]), (7, False, [7]), (3, True, [])])
async def test_a_worker_that_waits_for_the_supervisor_s_cpu_is_moved_off_it(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch,
    worker_cpu: int, movable: bool, moves: list[int]
) -> None:
    """A request still unread UNREAD_GRACE into the polling for its reply: the worker has not
    run since it was woken. Queued on the supervisor's CPU (7 here), it is moved off it, once
    per request (one that cannot be moved is let run: the polling stops); waking on another
    CPU (3), it is left alone and the polling goes on."""
    moved: list[int] = []
    checks: list[int] = []
    monkeypatch.setattr(worker_module, "current_cpu", lambda: 7)

    def cpu(self: Any) -> int:
        checks.append(self.pid)
        return worker_cpu

    def move_off(self: Any, cpu: int) -> bool:
        moved.append(cpu)
        return movable

    monkeypatch.setattr(placement_module.Placement, "cpu", cpu)
    monkeypatch.setattr(placement_module.Placement, "move_off", move_off)
    async with Runtime(workers=1, spare_workers=0, cache_dir=tmp_path / "cache",
                       supervisor_spin=0.01) as rt:
        await rt.load(plugin_dir)
        await rt.call("pool", "echo", 0)
        [pid] = rt.worker_pids
        checks.clear()
        moved.clear()
        os.kill(pid, signal.SIGSTOP)  # the request stays unread while the supervisor polls
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(rt.call, "pool", "echo", 1)
                await anyio.sleep(0.02)
                os.kill(pid, signal.SIGCONT)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert checks == [pid]  # once for the request, not on every turn
        assert moved == moves


async def test_the_supervisor_polls_for_a_load_and_the_first_call_behind_it(
    tmp_path: Path, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached plugin's load and its first call, pipelined behind it, are polled for (each
    wake-up between them cost 150-300 µs in this VM's slow mode), even from a worker whose
    calls are too slow for the lone-call poll; not with other requests in flight, not when
    polling is off."""
    cache = tmp_path / "cache"
    async with Runtime(workers=1, spare_workers=0, cache_dir=cache) as rt:
        await rt.load(plugin_dir)  # compiled and cached: the next runtime knows it

    async def load_and_first_call(*, spin: float, busy: bool = False) -> int:
        async with Runtime(workers=1, spare_workers=0, cache_dir=cache,
                           supervisor_spin=spin) as rt:
            for worker in rt._pool._ready:
                worker.work_time = 1.0  # the lone-call poll would not run for it
            turns = count_turns(rt)
            if busy:
                rt._pool.outstanding.requests += 1  # another request in flight in the pool
            await rt.load(plugin_dir)
            assert await rt.call("pool", "echo", 7) == 7
            if busy:
                rt._pool.outstanding.requests -= 1
            return turns[0]

    # The window is 1 ms from the load's write; a slow or busy machine can let it pass before
    # the supervisor first looks for the reply. Which requests are polled for is what is tested.
    monkeypatch.setattr(worker_module, "LOAD_SPIN_SECONDS", 1.0)
    # A supervisor kept off the CPU until both replies are in reads them without a turn (seen
    # once, with other work pinned to its CPU): one of three tries must poll.
    for _ in range(3):
        if (polled := await load_and_first_call(spin=0.01)) > 0:
            break
    assert polled > 0
    assert await load_and_first_call(spin=0.01, busy=True) == 0
    assert await load_and_first_call(spin=0.0) == 0
    monkeypatch.setattr(worker_module, "LOAD_SPIN_SECONDS", 0.0)
    assert await load_and_first_call(spin=0.0001) == 0  # the lone-call rule alone: no poll


async def test_the_count_of_requests_in_flight_returns_to_zero(
    tmp_path: Path, plugin_dir: Path
) -> None:
    """The poll is decided by the pool's count of requests in flight: every way a request ends
    (a reply, a pipelined flood, a trap, a timeout that kills the worker, an abandoned caller)
    must take it off, or the supervisor would never poll again (or poll under load)."""
    async with Runtime(workers=2, spare_workers=1, cache_dir=tmp_path / "cache",
                       quarantine_after=0, timeout_grace=0.1) as rt:
        await rt.load(plugin_dir)
        outstanding = rt._pool.outstanding
        results: list[object] = []

        async def call(i: int) -> None:
            results.append(await rt.call("pool", "echo", i))

        async def back_to_zero() -> None:
            # The pool's own requests (a spare loading the plugin after the settle time, a
            # replacement warming up) may still be in flight when a caller's call returns; a
            # count that leaked never gets back to zero.
            await wait_for(lambda: outstanding.requests == 0, timeout=10)

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(call, i)
        assert sorted(results) == list(range(200))
        await back_to_zero()
        with pytest.raises(PluginTrap):
            await rt.call("pool", "boom")
        await back_to_zero()
        with pytest.raises(CallTimeout):
            await rt.call("pool", "spin", timeout=0.1)
        await back_to_zero()
        with anyio.move_on_after(0.05):
            await rt.call("pool", "spin", timeout=5)  # the caller gives up; its worker dies
        await back_to_zero()  # the dead worker's serve task ends
        assert await rt.call("pool", "echo", "after") == "after"
        await back_to_zero()


_json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)


@given(message=st.dictionaries(st.text(max_size=12).filter(lambda key: key != "id"),
                               _json_scalars | st.lists(_json_scalars, max_size=4), max_size=8),
       call_id=st.integers(1, 2**53), payload=st.none() | st.binary(max_size=64))
def test_a_request_encoded_once_frames_like_the_dict_it_came_from(
    message: dict[str, object], call_id: int, payload: bytes | None
) -> None:
    """A capability's call with the manifest's limits is encoded once (``EncodedRequest``); each
    sending adds its id. The frame must be the one the dict would make, byte for byte."""
    encoded = worker_module.EncodedRequest(message)
    assert worker_module._frame(encoded, call_id, payload) == worker_module._frame(
        message, call_id, payload)


def test_an_encoded_request_leaves_the_id_to_each_sending() -> None:
    with pytest.raises(ValueError, match="id"):
        worker_module.EncodedRequest({"op": "call", "id": 3})


async def test_a_call_with_its_own_limits_is_not_sent_with_the_manifest_s(
    tmp_path: Path
) -> None:
    """Calls with the manifest's limits share one encoded request; a call's own timeout or fuel
    must still reach the worker (a spin with a short timeout times out, with little fuel runs
    out of fuel)."""
    slow = write_plugin(tmp_path / "plugins", "pool", limits={"timeoutMs": 60_000})
    async with Runtime(workers=1, spare_workers=1, cache_dir=tmp_path / "cache",
                       quarantine_after=0) as rt:
        await rt.load(slow)
        assert await rt.call("pool", "echo", 1) == 1
        (info,) = rt._plugins.values()
        assert set(info.default_calls) == {"echo"}
        started = time.monotonic()
        with anyio.fail_after(30), pytest.raises(CallTimeout):
            await rt.call("pool", "spin", timeout=0.2)
        assert time.monotonic() - started < 30  # its own timeout, not the manifest's minute
        with anyio.fail_after(10), pytest.raises(FuelExhausted):
            await rt.call("pool", "spin", fuel=10_000)
        assert set(info.default_calls) == {"echo"}
        assert await rt.call("pool", "echo", 2) == 2
