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
from services.runtime.consumer import ConsumerSpec, Record
from services.runtime.envelope import Event, decode_checked, events_consumer
from services.runtime.service import Runtime, ServiceParts, run

Decision = decisions_pb2.Decision


def _decode_decision(raw: bytes) -> Decision:
    # A decision about a member of the whole tenant (a blacklist entry added by hand, an
    # unban) has no group.
    return decode_checked(Decision, raw, ("decision_id", "tenant_id"))


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

    violations = ConsumerSpec(
        "analytics-decisions",
        [rt.settings.topic_decisions],
        _decode_decision,
        count_violations,
        lambda d: {"decision_id": d.decision_id, "tenant_id": d.tenant_id},
    )
    return ServiceParts(
        indexes=counters.INDEXES,
        routers=[api.router],
        consumers=[events_consumer("analytics", rt.settings, count), violations],
    )


if __name__ == "__main__":
    run("analytics", build)
