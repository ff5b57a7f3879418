"""Token buckets by key: per tenant for ingest (429 with the time to wait). Outbound pacing is
`pacing.py`."""

from __future__ import annotations

import time
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
