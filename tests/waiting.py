"""Polling helpers: the pipeline is asynchronous, so tests wait for an outcome with a deadline
instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    within: float = 30.0,
    every: float = 0.2,
) -> T:
    """Call `probe` until `until(result)` holds; fail with the last result after `within` s."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last result: {result!r}")
        await asyncio.sleep(every)


async def stays(probe: Callable[[], Awaitable[T]], expected: T, for_seconds: float = 2.0) -> None:
    """Assert that `probe()` keeps returning `expected` for a while (nothing counted twice)."""
    deadline = time.monotonic() + for_seconds
    while time.monotonic() < deadline:
        assert await probe() == expected
        await asyncio.sleep(0.25)
