"""Token buckets by key, in this process: per tenant for ingest (429 with the time to wait), per
live code and per client address for the public scan. Outbound pacing is `ingestion/pacing.py`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cachetools import TTLCache
from fastapi.responses import JSONResponse

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


class RateLimited(Exception):
    def __init__(self, what: str, wait: float) -> None:
        super().__init__(f"rate limit: {what}; retry in {wait:.1f} s")
        self.wait = wait


def too_many(exc: RateLimited) -> JSONResponse:
    """429 with the wait in Retry-After."""
    return JSONResponse(
        {"error": str(exc)}, status_code=429, headers={"Retry-After": str(math.ceil(exc.wait))}
    )
