"""One round trip for many callers: calls made while a request is on its way, or in the same
turn of the event loop, go together in the next one. For code whose callers are concurrent
tasks (delivery's groups, each with its own task) rather than one batch handler."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Coalesced(Generic[In, Out]):
    """`await coalesced(item)` answers with `run`'s result for that item; `run` takes every
    item waiting and returns one result per item, in order. If `run` raises, every caller of
    that round gets the exception. With `linger`, a round waits that long for more callers
    before it starts (callers arriving one by one, as requests do, then go together)."""

    def __init__(
        self, run: Callable[[list[In]], Awaitable[Sequence[Out]]], linger: float = 0.0
    ) -> None:
        self._run, self._linger = run, linger
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, item: In) -> Out:
        answer: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await answer

    async def _flush(self) -> None:
        round_: list[tuple[In, asyncio.Future[Out]]] = []
        try:
            await asyncio.sleep(self._linger)  # the callers of this turn (or moment) join
            while self._waiting:
                round_, self._waiting = self._waiting, []
                try:
                    results = await self._run([item for item, _ in round_])
                except Exception as exc:
                    for _, answer in round_:
                        if not answer.done():  # a caller cancelled meanwhile
                            answer.set_exception(exc)
                    continue
                for (_, answer), result in zip(round_, results, strict=True):
                    if not answer.done():
                        answer.set_result(result)
        finally:  # cancelled (the service stopping): nobody is left waiting for ever
            for _, answer in [*round_, *self._waiting]:
                if not answer.done():
                    answer.cancel()
