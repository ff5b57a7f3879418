"""Per-tenant token buckets: a platform that floods gets 429 with the time to wait."""

from __future__ import annotations

import time
from collections.abc import Callable


class TenantRateLimiter:
    """`rate` events per second with bursts up to `burst`, per tenant, in this process."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, tenant_id: str, count: int) -> float:
        """Take `count` tokens; 0.0 when allowed, else the seconds until they would be there."""
        now = self.clock()
        tokens, updated = self._buckets.get(tenant_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        if tokens >= count:
            self._buckets[tenant_id] = (tokens - count, now)
            return 0.0
        self._buckets[tenant_id] = (tokens, now)
        return (count - tokens) / self.rate
