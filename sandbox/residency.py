"""What a worker keeps resident: its heap's large buffers and the compiler's machine code.

Both are about a long-lived worker's RSS: what one large call or one compile leaves behind.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Sequence

#: glibc's mallopt parameter, and the size from which allocations get their own mapping.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024
MADV_DONTNEED = 4


def fix_mmap_threshold() -> None:
    """Serve every allocation of 128 KiB or more with its own mmap, returned to the kernel on free.

    glibc otherwise raises that threshold after the first large free (up to 32 MiB), so the
    buffers of a 1 MB call then come from the heap and stay resident: a worker's RSS stayed ~10 MB
    up after one large call. Setting it also turns the adjustment off."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not glibc
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


class LibraryCode:
    """The executable pages of one shared library mapped in this process.

    Compiling a module runs Cranelift, whose code in wasmtime's library is ~8 MB that a worker
    serving calls never runs again; once run, those pages stay mapped and count in the worker's
    RSS (clean file pages, shared with any process that maps the library). :meth:`release` drops
    this process's mapping of them: pages still needed fault back in from the page cache on their
    next use. Only the read-only executable mappings are touched: they hold no process state (the
    relocated and writable segments do, and are left alone).

    The ranges are read from ``/proc/self/maps`` at creation, before Landlock closes ``/proc``."""

    def __init__(self, ranges: Sequence[tuple[int, int]]) -> None:
        self.ranges = tuple(ranges)

    @classmethod
    def of(cls, library_path: str) -> LibraryCode:
        """The executable mappings of the library loaded from ``library_path`` (none if absent)."""
        ranges = []
        try:
            with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
                for line in maps:
                    fields = line.split(maxsplit=5)
                    if len(fields) == 6 and fields[1] == "r-xp" and fields[5].strip() == library_path:
                        start, end = (int(bound, 16) for bound in fields[0].split("-"))
                        ranges.append((start, end))
        except OSError:
            pass  # no /proc: nothing to release later
        return cls(ranges)

    def release(self) -> bool:
        """Drop the mapping of every page of the library's code; True if the kernel agreed."""
        if not self.ranges:
            return False
        try:
            madvise = ctypes.CDLL(None, use_errno=True).madvise
        except (OSError, AttributeError):
            return False
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
        return all(madvise(start, end - start, MADV_DONTNEED) == 0 for start, end in self.ranges)
