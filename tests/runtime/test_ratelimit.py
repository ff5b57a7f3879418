from __future__ import annotations

from services.ingestion.pacing import SlidingWindow
from services.runtime.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bursts_then_refills_at_the_rate_per_tenant() -> None:
    clock = Clock()
    limiter = TokenBuckets(rate=100, burst=500, clock=clock)
    assert limiter.take("a", 500) == 0
    assert limiter.take("a", 1) == 0.01
    assert limiter.take("b", 500) == 0, "each tenant has its own bucket"
    clock.now = 2.0
    assert limiter.take("a", 200) == 0
    assert limiter.take("a", 100) == 1.0
    clock.now = 100.0
    assert limiter.take("a", 500) == 0, "the bucket never holds more than the burst"
    assert limiter.take("a", 1) > 0


def test_a_sliding_window_never_lets_more_than_the_limit_through_any_window() -> None:
    clock = Clock()
    window = SlidingWindow(limit=20, seconds=60, clock=clock)
    sent = []
    for tick in range(0, 1440):  # every 1/8 s (exact in binary) for three minutes
        clock.now = tick / 8
        if window.wait("chat") == 0:
            sent.append(clock.now)
    assert max(sum(1 for t in sent if start <= t < start + 60) for start in sent) == 20
    assert len(sent) == 60
