"""Analytics: `python -m services.analytics`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from services.analytics import api, counters
from services.analytics.counters import Counters
from services.analytics.counting import contributions, violation
from services.gen.shequn.v1 import decisions_pb2
from services.runtime import metrics
from services.runtime.consumer import Pace, Record
from services.runtime.envelope import Event, decisions_consumer, events_consumer
from services.runtime.service import Runtime, ServiceParts, run

Decision = decisions_pb2.Decision


def build(rt: Runtime) -> ServiceParts:
    tz = ZoneInfo(rt.settings.default_timezone)
    # A copy of an event can come as long after it as ingestion would take it for new.
    kept = timedelta(days=rt.settings.ingest_dedupe_days)
    by_events = Counters(rt.store, "events", kept)
    by_decisions = Counters(rt.store, "decisions", kept)

    async def count(records: Sequence[Record[Event]]) -> None:
        await by_events.absorb(contributions((r.value for r in records), tz))
        for r in records:
            metrics.EVENTS_ANALYZED.labels(r.value.WhichOneof("payload") or "").inc()

    async def count_violations(records: Sequence[Record[Decision]]) -> None:
        found = (violation(r.value, tz) for r in records)
        await by_decisions.absorb([c for c in found if c is not None])

    violations = decisions_consumer("analytics-decisions", rt.settings, count_violations)
    return ServiceParts(
        indexes=counters.INDEXES,
        routers=[api.router],
        consumers=[
            events_consumer("analytics", rt.settings, count, pace=Pace.ROLLS_UP),
            violations,
        ],
    )


if __name__ == "__main__":
    run("analytics", build)
