"""How the command line runs its event loop: asyncio on uvloop when uvloop is installed.

uvloop takes ~20% off a tiny call's latency here (171 -> 138 µs p50; docs/performance.md).
Applications that embed the runtime choose their own loop: ``anyio.run(main,
backend_options={"use_uvloop": True})``, or trio.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run(fn)`` on asyncio, with uvloop if it is installed."""
    options: dict[str, Any] = {"use_uvloop": True} if uvloop_installed() else {}
    return anyio.run(fn, backend_options=options)
