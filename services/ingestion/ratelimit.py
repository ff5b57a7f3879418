"""Token buckets by key: per tenant for ingest (429 with the time to wait), per group and per
bot for outbound delivery (platform limits such as Telegram's 20 messages a minute per group)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from cachetools import TTLCache

_KEYS_KEPT = 100_000


class TokenBuckets:
    """`rate` tokens per second with bursts up to `burst`, per key, in this process."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        # A bucket left alone until it is full again is the same as no bucket: entries expire
        # then, so the keys a stranger invents do not stay.
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(
            _KEYS_KEPT, self.burst / rate, timer=clock
        )

    def take(self, key: str, count: float = 1) -> float:
        """Take `count` tokens; 0.0 when allowed, else the seconds until they would be there."""
        now = self.clock()
        tokens, updated = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= count:
            self._buckets[key] = (tokens - count, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (count - tokens) / self.rate

    async def acquire(self, key: str, count: float = 1) -> None:
        """Wait until `count` tokens can be taken, then take them."""
        while wait := self.take(key, count):  # noqa: ASYNC110 - tokens refill with time, no event
            await asyncio.sleep(wait)


class SlidingWindow:
    """At most `limit` events in any `seconds`-long window, per key — what a platform's
    published limit means (Telegram: 20 messages a minute per group). A key can also be
    blocked for a while, when the platform says to wait."""

    def __init__(
        self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self._sent: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    def wait(self, key: str) -> float:
        """Seconds until one more event is allowed (0.0: now), recording it when allowed."""
        now = self.clock()
        blocked = self._blocked.get(key, 0.0) - now
        if blocked > 0:
            return blocked
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - self.seconds:
            sent.popleft()
        if len(sent) < self.limit:
            sent.append(now)
            return 0.0
        return sent[0] + self.seconds - now

    def block(self, key: str, seconds: float) -> None:
        self._blocked[key] = max(self._blocked.get(key, 0.0), self.clock() + seconds)

    async def acquire(self, key: str) -> None:
        while wait := self.wait(key):  # noqa: ASYNC110 - the window slides with time, no event
            await asyncio.sleep(wait)
