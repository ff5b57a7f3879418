"""Analytics: `python -m services.analytics`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from services.analytics import api, counters, grpc_api
from services.analytics.counters import GROUP_DAILY, TENANT_DAILY, Counters
from services.analytics.counting import contributions, tenant_contributions, violation
from services.analytics.queries import Statistics
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
    group_days = Counters(rt.store, GROUP_DAILY, "events", kept, posters=True)
    tenant_days = Counters(rt.store, TENANT_DAILY, "events", kept)
    violations_by_day = Counters(rt.store, GROUP_DAILY, "decisions", kept, posters=True)

    async def count(records: Sequence[Record[Event]]) -> None:
        await group_days.absorb(contributions((r.value for r in records), tz))
        await tenant_days.absorb(
            [c for r in records for c in tenant_contributions(r.value, r.partition, tz)]
        )
        for r in records:
            metrics.EVENTS_ANALYZED.labels(r.value.WhichOneof("payload") or "").inc()

    async def count_violations(records: Sequence[Record[Decision]]) -> None:
        found = (violation(r.value, tz) for r in records)
        await violations_by_day.absorb([c for c in found if c is not None])

    violations = decisions_consumer("analytics-decisions", rt.settings, count_violations)
    asked = Statistics(rt.store, rt.settings)
    return ServiceParts(
        indexes=counters.INDEXES,
        routers=[api.router],
        provides=[asked],
        grpc=[grpc_api.service(asked, rt.auth)],
        consumers=[
            events_consumer("analytics", rt.settings, count, pace=Pace.ROLLS_UP),
            violations,
        ],
    )


if __name__ == "__main__":
    run("analytics", build)
