"""Analytics: `python -m services.analytics`."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from services.analytics import api, counters
from services.analytics.counting import contributions
from services.runtime import metrics
from services.runtime.consumer import Record
from services.runtime.envelope import Event, events_consumer
from services.runtime.service import Runtime, ServiceParts, run


def build(rt: Runtime) -> ServiceParts:
    tz = ZoneInfo(rt.settings.default_timezone)
    group_daily = rt.store[counters.GROUP_DAILY]

    async def count(records: Sequence[Record[Event]]) -> None:
        found = contributions((r.value for r in records), tz)
        await counters.absorb(group_daily, found)
        for r in records:
            metrics.EVENTS_ANALYZED.labels(r.value.WhichOneof("payload") or "").inc()

    return ServiceParts(
        indexes=counters.INDEXES,
        routers=[api.router(group_daily, tz)],
        consumers=[events_consumer("analytics", rt.settings, count)],
    )


if __name__ == "__main__":
    run("analytics", build)
