"""Actions waiting their turn, in memory, with the partition that owns their group: one queue per
group, delivered in order, each group by a task of its own that sleeps until its first action is
due. A group waiting for the platform's pacing or a retry holds back only itself: the batch it
came in was done long ago, and every other group goes on (`holds.py` keeps the offsets of the
waiting ones uncommitted, so a crash loses none of them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from services.gen.shequn.v1 import actions_pb2
from services.ingestion.adapters import Outcome

log = logging.getLogger(__name__)
_AFTER_AN_ERROR = 5.0  # seconds before a group tries again after its delivery step raised


@dataclass
class Waiting:
    """An action taken from the topic and not finished yet."""

    key: str  # "{tenant}:{action}"
    action: actions_pb2.Action
    tp: TopicPartition
    offset: int
    claimed_at: float  # epoch seconds, from the ledger: how long it has waited in all
    attempts: int = 0  # platform calls made so far (pacing waits are none)
    due: float = 0.0  # monotonic
    outcome: Outcome | None = None  # once the platform has answered, until it is recorded
    ledger_done: bool = False  # its result is in the ledger; the timeline and topic may not be
    # Written with `delivering`, so that a start whose answer was lost is still known as ours.
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def group(self) -> str:
        return f"{self.action.tenant_id}:{self.action.group_id}"


# Deliver (or try to) the first action of a group: None once it is finished, else the seconds
# to wait before it is tried again.
Step = Callable[[Waiting], Awaitable[float | None]]


class Dispatcher:
    def __init__(self, step: Step, parallel: int) -> None:
        self.step = step
        self._queues: dict[str, deque[Waiting]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._queued: set[str] = set()
        self._busy: set[str] = set()  # groups in a delivery step right now
        self._closing: set[TopicPartition] = set()
        self._slots = asyncio.Semaphore(parallel)

    def __len__(self) -> int:
        return len(self._queued)

    def __contains__(self, key: str) -> bool:
        return key in self._queued

    def add(self, waiting: Waiting) -> bool:
        """Queue an action behind its group's; False if it is queued already."""
        if waiting.key in self._queued:
            return False
        self._queued.add(waiting.key)
        self._queues.setdefault(waiting.group, deque()).append(waiting)
        if waiting.group not in self._workers:
            self._workers[waiting.group] = asyncio.create_task(self._work(waiting.group))
        return True

    async def _work(self, group: str) -> None:
        queue = self._queues[group]
        try:
            while queue and queue[0].tp not in self._closing:
                head = queue[0]
                if (delay := head.due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                    continue
                async with self._slots:
                    self._busy.add(group)
                    try:
                        wait = await self.step(head)
                    except Exception:
                        log.exception("delivery step failed; the group tries again shortly")
                        wait = _AFTER_AN_ERROR
                    finally:
                        self._busy.discard(group)
                if wait is None:
                    queue.popleft()
                    self._queued.discard(head.key)
                else:
                    head.due = time.monotonic() + wait
        finally:
            self._workers.pop(group, None)
            if not queue:
                self._queues.pop(group, None)

    async def drain(self, partitions: Iterable[TopicPartition]) -> None:
        """The partitions are going: finish the platform calls under way (a call cut off would
        have an unknown outcome), start no other, and forget their queues; whoever holds the
        partitions next reads those actions again."""
        gone = set(partitions)
        self._closing |= gone
        try:
            groups = [g for g, q in self._queues.items() if q and q[0].tp in gone]
            for group in groups:
                task = self._workers.get(group)
                if task is not None and group not in self._busy:
                    task.cancel()  # asleep until due: nothing under way
            await asyncio.gather(
                *(t for g in groups if (t := self._workers.get(g))), return_exceptions=True
            )
            # Looked at again: a group queued meanwhile (a batch in hand) goes too.
            for group in [g for g, q in self._queues.items() if q and q[0].tp in gone]:
                if (task := self._workers.get(group)) is not None:
                    task.cancel()
                for waiting in self._queues.pop(group, ()):
                    self._queued.discard(waiting.key)
        finally:
            self._closing -= gone

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._workers.values(), return_exceptions=True)


class Background:
    """What follows a platform call (recording its result), which the group's next action does
    not wait for: the platform is called in each group's order, the bookkeeping goes alongside.
    Kept by partition, so that a partition is let go once its results are written, or after
    `patience` seconds (an outage): the ledger then says `delivering`, which the next owner
    reports as an outcome unknown, never as a call to make again."""

    def __init__(self, patience: float) -> None:
        self.patience = patience
        self._tasks: dict[asyncio.Task[None], TopicPartition] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, tp: TopicPartition, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks[task] = tp
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("recording a result failed", exc_info=exc)

    async def drain(self, partitions: Iterable[TopicPartition]) -> None:
        gone = set(partitions)
        tasks = [t for t, tp in self._tasks.items() if tp in gone]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.patience)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
