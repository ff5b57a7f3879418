"""Analytics: `python -m services.analytics`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from services.analytics import api, counters, grpc_api, projections
from services.analytics.counters import GROUP_DAILY, Counters
from services.analytics.counting import violation
from services.analytics.queries import Statistics
from services.analytics.reports import Reports
from services.analytics.rollups import Rollups
from services.analytics.zones import Zones
from services.gen.shequn.v1 import decisions_pb2
from services.runtime.consumer import Pace, Record
from services.runtime.envelope import decisions_consumer, events_consumer
from services.runtime.service import Runtime, ServiceParts, run

Decision = decisions_pb2.Decision


def build(rt: Runtime) -> ServiceParts:
    zones = Zones(rt.store, rt.settings.default_timezone)
    # A copy of an event can come as long after it as ingestion would take it for new.
    kept = timedelta(days=rt.settings.ingest_dedupe_days)
    rollups = Rollups(rt.store, zones, kept)
    violations_by_day = Counters(rt.store, GROUP_DAILY, "decisions", kept, posters=True)

    async def count_violations(records: Sequence[Record[Decision]]) -> None:
        tz = await zones.of(r.value.tenant_id for r in records)
        found = (violation(r.value, tz[r.value.tenant_id]) for r in records)
        await violations_by_day.absorb([c for c in found if c is not None])

    asked = Statistics(rt.store, zones)
    reports = Reports(rt.store, zones)
    return ServiceParts(
        indexes=[*counters.INDEXES, *projections.INDEXES],
        routers=[api.router],
        provides=[asked, reports, zones],
        grpc=[grpc_api.service(asked, reports, rt.auth)],
        consumers=[
            events_consumer("analytics", rt.settings, rollups.count, pace=Pace.ROLLS_UP),
            decisions_consumer("analytics-decisions", rt.settings, count_violations),
        ],
    )


if __name__ == "__main__":
    run("analytics", build)
