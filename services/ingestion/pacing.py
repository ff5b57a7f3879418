"""Platform pacing, as waits to schedule rather than sleeps: each check answers how long to wait
before the platform may be called (0.0: now, and the call is counted).

Per-group limits (Telegram: 20 messages a minute per group) live in memory, with the partition
that owns the group: every action of a group reaches the one consumer holding its partition.
Per-bot and per-corp limits (Telegram: 30 a second per bot; WeCom's per-corp frequency) span
groups on every partition and replica, so they are shared: one document per bot or corp in
MongoDB, taken by a conditional update. A platform's "wait" (Telegram's `retry_after`, WeCom's
60 s block) is written there too, so every replica honours it. Keys begin with the tenant: a
bot's public id alone would let one tenant block another's bot."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from cachetools import TTLCache
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.runtime.store import Document

PACING = "pacing"
_KEYS_KEPT = 100_000


class SlidingWindow:
    """At most `limit` events in any `seconds`-long window, per key, in this process — what a
    platform's published limit means. Keys no event touched for a window are forgotten."""

    def __init__(
        self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self._sent: TTLCache[str, deque[float]] = TTLCache(_KEYS_KEPT, seconds, timer=clock)

    def wait(self, key: str, take: bool = True) -> float:
        """Seconds until one more event is allowed (0.0: now, recorded if `take`)."""
        now = self.clock()
        sent = self._sent.get(key) or deque()
        while sent and sent[0] <= now - self.seconds:
            sent.popleft()
        if len(sent) >= self.limit:
            return sent[0] + self.seconds - now
        if take:
            sent.append(now)
            self._sent[key] = sent  # (re)set: it lives a window past its latest event
        return 0.0


class SharedWindows:
    """At most `limit` calls per `seconds` per key, counted in one document per key that every
    replica updates conditionally: `{w: window number, n: calls in it, until: blocked until}`
    (times in epoch microseconds; wall clock, as replicas share it)."""

    def __init__(
        self, collection: AsyncCollection[Document], clock: Callable[[], float] = time.time
    ) -> None:
        self.collection, self.clock = collection, clock
        # The window each key was last counted in here: the first call of a new window tries
        # to open it first, one round trip instead of two (a wrong guess costs the other).
        self._counted_in: TTLCache[str, int] = TTLCache(_KEYS_KEPT, 60)

    async def wait(self, key: str, limit: int, seconds: float) -> float:
        now = self.clock()
        window, at = int(now // seconds), int(now * 1_000_000)
        free = {"until": {"$lte": at}}
        # `$and` spelled out, as for every update filter that combines conditions on `_id`
        # with others (NX-27017 misreads `{_id, $or}`; this one keeps to what both servers read).
        counted = (
            {"$and": [{"_id": key}, {"w": window}, {"n": {"$lt": limit}}, free]},
            {"$inc": {"n": 1}},
        )
        fresh = (
            {"$and": [{"_id": key}, {"w": {"$lt": window}}, free]},
            {"$set": {"w": window, "n": 1}},
        )
        tries = (counted, fresh) if self._counted_in.get(key) == window else (fresh, counted)
        for condition, update in tries:
            if await self.collection.find_one_and_update(condition, update):
                self._counted_in[key] = window
                return 0.0
        doc = await self.collection.find_one({"_id": key})
        if doc is None:
            try:
                await self.collection.insert_one({"_id": key, "w": window, "n": 1, "until": 0})
                self._counted_in[key] = window
                return 0.0
            except DuplicateKeyError:  # another replica made it meanwhile: its window now
                return 0.01
        if int(doc.get("until", 0)) > at:
            return (int(doc["until"]) - at) / 1_000_000
        return max((window + 1) * seconds - now, 0.001)  # this window is full

    async def block(self, key: str, seconds: float) -> None:
        """The platform said to wait: nobody calls for `key` for `seconds`."""
        until = int((self.clock() + seconds) * 1_000_000)
        await self.collection.update_one(
            {"_id": key}, {"$max": {"until": until}, "$setOnInsert": {"w": 0, "n": 0}}, upsert=True
        )
