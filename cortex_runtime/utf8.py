"""Where bytes stop being UTF-8, without decoding them.

``Runtime.call_json`` refuses text that is not UTF-8 before any worker sees it. Python can only
tell by decoding, which builds a ``str`` the check then throws away: ~110 µs for a 100 KB JSON
document with some non-ASCII text, against ~15 µs for one pass in C (``cortex_utf8_check`` in
``sandbox/native/utf8.c``, built into the worker's native library by ``scripts/build-native``).
Without that library the decode is the check.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path

import sandbox

#: The project's native library (see ``sandbox/guest.py``); only its UTF-8 check is used here.
LIBRARY = Path(sandbox.__file__).with_name(sandbox.NATIVE_LIBRARY)

_Check = Callable[[bytes, int], int]


def _load(library: Path) -> _Check | None:
    """``cortex_utf8_check`` from ``library``; None if it was not built, will not load, or was
    built from older source without the function."""
    if not library.is_file():
        return None
    try:
        loaded = ctypes.CDLL(str(library))
        prototype = ctypes.PYFUNCTYPE(ctypes.c_int64, ctypes.c_char_p, ctypes.c_size_t)
        check: _Check = prototype(("cortex_utf8_check", loaded))
    except (OSError, AttributeError):
        return None
    return check


_native_check = _load(LIBRARY)
#: Whether :func:`invalid_utf8_at` runs in C (tests turn it off to compare the two).
native = _native_check is not None


def invalid_utf8_at(data: bytes) -> int | None:
    """The offset of the first byte of the first sequence in ``data`` that is not UTF-8 (where
    ``data.decode("utf-8")`` would report it), or None if all of it is UTF-8."""
    if native and _native_check is not None:
        at = _native_check(data, len(data))
        return None if at < 0 else at
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None
