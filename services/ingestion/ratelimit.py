"""Token buckets by key: per tenant for ingest (429 with the time to wait), per group and per
bot for outbound delivery (platform limits such as Telegram's 20 messages a minute per group)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBuckets:
    """`rate` tokens per second with bursts up to `burst`, per key, in this process."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}

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
