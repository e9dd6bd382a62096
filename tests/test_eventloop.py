"""The command line runs asyncio on uvloop when uvloop is installed (docs/performance.md)."""

from __future__ import annotations

import asyncio

import pytest

from cortex_runtime import eventloop


def _loop_module() -> str:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    return eventloop.run(which)


def test_the_cli_loop_is_uvloop_when_installed() -> None:
    assert eventloop.uvloop_installed(), "uvloop is a dev dependency (pyproject.toml)"
    assert _loop_module().startswith("uvloop")


def test_without_uvloop_it_is_plain_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventloop, "uvloop_installed", lambda: False)
    assert _loop_module().startswith("asyncio")
