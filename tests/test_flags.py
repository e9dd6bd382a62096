"""The per-request flag (cortex_runtime/flags.py): a bare future on asyncio, anyio.Event elsewhere,
with anyio.Event's behaviour where the worker relies on it: set once, awaited by one task,
cancellation of the waiter leaves it usable."""

from __future__ import annotations

import anyio
import pytest

from cortex_runtime.flags import AsyncioFlag, flag_type

pytestmark = pytest.mark.anyio


async def test_the_flag_type_follows_the_event_loop(anyio_backend: str) -> None:
    flag = flag_type()()
    assert isinstance(flag, AsyncioFlag) == (anyio_backend == "asyncio")
    assert not flag.is_set()
    flag.set()
    flag.set()  # setting twice is harmless
    assert flag.is_set()
    with anyio.fail_after(1):
        await flag.wait()


async def test_a_waiter_wakes_when_the_flag_is_set(anyio_backend: str) -> None:
    flag = flag_type()()
    woke: list[bool] = []

    async def waiter() -> None:
        await flag.wait()
        woke.append(flag.is_set())

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        flag.set()
    assert woke == [True]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_waiting_on_a_set_flag_does_not_yield(anyio_backend: str) -> None:
    # The usual case for a pipelined reply: it was read before its caller waited for it.
    flag = AsyncioFlag()
    flag.set()
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await flag.wait()
        ran.append("waited")
    assert ran == ["waited", "other"]


async def test_a_cancelled_waiter_leaves_the_flag_usable(anyio_backend: str) -> None:
    flag = flag_type()()
    with anyio.move_on_after(0.01) as scope:
        await flag.wait()
    assert scope.cancelled_caught and not flag.is_set()
    flag.set()  # no error although the last waiter's future was cancelled
    with anyio.fail_after(1):
        await flag.wait()

    unset = flag_type()()
    with anyio.move_on_after(0.01):
        await unset.wait()
    async with anyio.create_task_group() as tg:  # a new waiter after a cancelled one still wakes

        async def waiter() -> None:
            with anyio.fail_after(1):
                await unset.wait()

        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        unset.set()
