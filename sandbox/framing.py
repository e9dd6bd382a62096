"""Length-prefixed JSON frames: the wire format between supervisor and worker.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of one UTF-8 JSON object,
or, for a request that carries a call's input, of ``b"B"``, a 4-byte big-endian length, that many
bytes of JSON object, and the input's raw bytes (the *attachment*: a large input then crosses as it
is, instead of as an escaped JSON string that both sides must encode and decode).
Both sides refuse frames larger than ``MAX_FRAME_BYTES`` before reading their body, so a hostile
peer cannot make the other side allocate without bound. This module is shared by the worker (which
uses the blocking helpers) and the supervisor (which feeds bytes to :class:`FrameDecoder`).
"""

from __future__ import annotations

import os
import struct
from typing import Any

import orjson

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
#: Inputs and outputs are capped at 16 MiB by the manifest; the rest is envelope.
MAX_FRAME_BYTES = 32 * 1024 * 1024
PROTOCOL_VERSION = 1
ATTACHMENT_MARK = b"B"
#: The key under which a decoded frame's attachment appears.
ATTACHMENT = "attachment"


class FrameError(Exception):
    """The byte stream is not a valid sequence of frames."""


def encode_frame(message: dict[str, Any] | bytes, *, limit: int = MAX_FRAME_BYTES) -> bytes:
    """Serialise ``message`` (or pre-serialised JSON bytes) into one frame."""
    body = message if isinstance(message, bytes) else orjson.dumps(message)
    if len(body) > limit:
        raise FrameError(f"frame of {len(body)} bytes exceeds the {limit}-byte limit")
    return HEADER.pack(len(body)) + body


def encode_frame_with_attachment(message: bytes, attachment: bytes, *,
                                  limit: int = MAX_FRAME_BYTES) -> bytes:
    """One frame holding the JSON object ``message`` (pre-serialised) and raw ``attachment``."""
    return attachment_frame_head(message, len(attachment), limit=limit) + attachment


def attachment_frame_head(message: bytes, attachment_size: int, *,
                          limit: int = MAX_FRAME_BYTES) -> bytes:
    """Everything of an attachment frame before the attachment itself, so that a large
    attachment can be written from where it lies (``os.writev``) instead of joined first."""
    size = 1 + HEADER_SIZE + len(message) + attachment_size
    if size > limit:
        raise FrameError(f"frame of {size} bytes exceeds the {limit}-byte limit")
    return b"".join((HEADER.pack(size), ATTACHMENT_MARK, HEADER.pack(len(message)), message))


def decode_body(body: bytes | bytearray | memoryview, *, attachments: bool = True,
                owned: bool = False) -> dict[str, Any]:
    """Parse a frame body, insisting on a JSON object (and its attachment, if it has one and
    ``attachments`` allows it). ``body`` may be a view into a buffer: nothing refers to it after,
    unless ``owned`` says the buffer is the frame's alone: its attachment is then a view of it
    (a large input is not copied once more)."""
    if body[:1] == ATTACHMENT_MARK:
        if not attachments:
            raise FrameError("unexpected frame with an attachment")
        if len(body) < 1 + HEADER_SIZE:
            raise FrameError("attachment frame too short for its header")
        (length,) = HEADER.unpack_from(body, 1)
        start = 1 + HEADER_SIZE
        if start + length > len(body):
            raise FrameError(f"attachment frame announces {length} bytes of JSON, past its end")
        view = memoryview(body)
        message = decode_body(view[start:start + length], attachments=False)
        message[ATTACHMENT] = view[start + length:] if owned else bytes(view[start + length:])
        return message
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"frame body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict):
        raise FrameError(f"frame body is a JSON {type(message).__name__}, not an object")
    return message


#: Bytes asked of the kernel per read (a 16 MiB input takes several).
READ_BYTES = 256 * 1024
#: A frame at least this large is read into a buffer of its own, straight from the pipe: it is
#: then neither appended to the shared buffer piece by piece nor copied out of it again.
LARGE_FRAME_BYTES = 64 * 1024


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, take out whole messages.

    A large frame's attachment (see ``LARGE_FRAME_BYTES``) is a view into a buffer that belongs
    to that frame alone, so it stays valid for as long as it is kept; unless ``keep_large`` is
    set: large frames of up to that many bytes are then read into one buffer kept for them (no
    fresh pages to fault in for each), and an attachment read into it is valid only until the
    next ``read_from`` or ``feed`` (which releases it: a late use raises ``ValueError``)."""

    def __init__(self, *, limit: int = MAX_FRAME_BYTES, attachments: bool = True,
                 keep_large: int = 0) -> None:
        self._buffer = bytearray()
        self._limit = limit
        self._attachments = attachments
        self._chunk: memoryview | None = None
        #: The body of a large frame being read, and how much of it has arrived.
        self._large: memoryview | None = None
        self._filled = 0
        self._keep_large = keep_large
        self._kept: bytearray | None = None
        #: The last attachment handed out from the kept buffer (released before it is reused).
        self._lent: memoryview | None = None

    def read_from(self, fd: int) -> list[dict[str, Any]] | None:
        """One read of ``fd`` (blocking or not, as the descriptor is; ``BlockingIOError`` if it
        has nothing now), fed in; the messages it completed, or None at end of file.

        It reads into a buffer kept for the purpose: ``os.read`` allocates ``READ_BYTES`` per
        call, which in a worker (every allocation of 128 KiB or more mmapped on its own, see
        ``residency.fix_mmap_threshold``) cost an mmap, a page fault, an mremap and an munmap:
        9 µs per read instead of 1. The rest of a large frame is read straight into its own
        buffer (and no further: the next frame stays in the pipe until the next read)."""
        self._take_back()
        if self._large is not None:
            count = os.readv(fd, [self._large[self._filled:]])
            if not count:
                return None
            self._filled += count
            return self._large_done()
        if self._chunk is None:
            self._chunk = memoryview(bytearray(READ_BYTES))
        count = os.readv(fd, [self._chunk])
        if not count:
            return None
        return self.feed(self._chunk[:count])

    def feed(self, data: bytes | memoryview) -> list[dict[str, Any]]:
        """Add ``data`` and return every message it completed (maybe none)."""
        self._take_back()
        messages: list[dict[str, Any]] = []
        if self._large is not None:
            take = min(len(data), len(self._large) - self._filled)
            self._large[self._filled:self._filled + take] = data[:take]
            self._filled += take
            messages.extend(self._large_done())
            if self._large is not None:
                return messages
            data = data[take:]
        self._buffer += data
        while len(self._buffer) >= HEADER_SIZE:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self._limit:
                raise FrameError(f"frame header announces {length} bytes, over the {self._limit}-byte limit")
            end = HEADER_SIZE + length
            if len(self._buffer) < end:
                if length >= LARGE_FRAME_BYTES:  # the rest goes straight into its own buffer
                    self._large = self._large_buffer(length)
                    self._filled = len(self._buffer) - HEADER_SIZE
                    self._large[:self._filled] = memoryview(self._buffer)[HEADER_SIZE:]
                    self._buffer.clear()
                break
            # Decoded in place (a 1 MB frame is not copied twice first); the view must be
            # released before the buffer may shrink.
            with memoryview(self._buffer) as view:
                messages.append(decode_body(view[HEADER_SIZE:end], attachments=self._attachments))
            del self._buffer[:end]
        return messages

    def _large_buffer(self, length: int) -> memoryview:
        # A fresh one while the kept one is still lent (two large frames in one read or feed).
        if length > self._keep_large or self._lent is not None:
            return memoryview(bytearray(length))
        if self._kept is None or len(self._kept) < length:
            self._kept = bytearray(max(length, READ_BYTES))
        return memoryview(self._kept)[:length]

    def _large_done(self) -> list[dict[str, Any]]:
        """The large frame, decoded, once all of it has arrived (none before)."""
        if self._large is None or self._filled < len(self._large):
            return []
        body, self._large = self._large, None
        message = decode_body(body, attachments=self._attachments, owned=True)
        attachment = message.get(ATTACHMENT)
        if isinstance(attachment, memoryview) and body.obj is self._kept:
            self._lent = attachment
        return [message]

    def _take_back(self) -> None:
        """The kept buffer is about to be reused: the attachment lent from it ends here."""
        if self._lent is not None:
            self._lent.release()
            self._lent = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer) + self._filled if self._large is not None else len(self._buffer)


def read_exactly(fd: int, size: int) -> bytes:
    """Blocking read of exactly ``size`` bytes; ``EOFError`` if the peer closed first."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, *, limit: int = MAX_FRAME_BYTES) -> dict[str, Any]:
    """Blocking read of one frame from ``fd``."""
    (length,) = HEADER.unpack(read_exactly(fd, HEADER_SIZE))
    if length > limit:
        raise FrameError(f"frame header announces {length} bytes, over the {limit}-byte limit")
    return decode_body(read_exactly(fd, length))


def write_all(fd: int, data: bytes) -> None:
    """Blocking write of all of ``data``."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_all_parts(fd: int, parts: list[bytes | memoryview]) -> None:
    """Blocking write of ``parts`` one after another, gathered (``os.writev``): a large part is
    written from where it lies instead of being joined into one buffer first."""
    views = [memoryview(part) for part in parts if len(part)]
    while views:
        drop_written(views, os.writev(fd, views))


def drop_written(views: list[memoryview], written: int) -> None:
    """Take the first ``written`` bytes off ``views`` (the parts of a gathered write), after a
    ``writev`` that may have stopped anywhere, even inside a part."""
    while views and written >= len(views[0]):
        written -= len(views.pop(0))
    if views:
        views[0] = views[0][written:]
