"""A batch of events into every rollup analytics keeps, once: the joins recorded first (the
cohorts need them), then each family of counters, then the groups' state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from services.analytics import counting
from services.analytics.cohorts import cohort_shares
from services.analytics.counters import (
    GROUP_DAILY,
    LIVECODE_DAILY,
    SERIES_DAILY,
    TENANT_DAILY,
    Counters,
)
from services.analytics.projections import GROUPS, Groups, Members, ScanKeys, member_id
from services.analytics.zones import Zones
from services.gen.shequn.v1 import events_pb2
from services.runtime import metrics
from services.runtime.consumer import Record
from services.runtime.store import Store

Event = events_pb2.Event


class Rollups:
    def __init__(self, store: Store, zones: Zones, kept: timedelta) -> None:
        self.zones = zones
        self.group_days = Counters(store, GROUP_DAILY, "events", kept, posters=True)
        self.tenant_days = Counters(store, TENANT_DAILY, "events", kept)
        self.livecode_days = Counters(store, LIVECODE_DAILY, "events", kept)
        self.series_days = Counters(store, SERIES_DAILY, "events", kept)
        self.members_now = Counters(store, GROUPS, "events", kept)
        self.scan_keys, self.members, self.groups = ScanKeys(store), Members(store), Groups(store)

    async def count(self, records: Sequence[Record[Event]]) -> None:
        events = [r.value for r in records]
        zones = await self.zones.of(e.tenant_id for e in events)
        groups = await self.groups.load(events)
        resolved = await self.scan_keys.joinings(events)
        joinings = await self.members.joinings(events, resolved)
        found: dict[str, list[counting.Contribution]] = {
            "group": [], "tenant": [], "livecode": [], "members": [], "series": [],
        }  # fmt: skip
        for r in records:
            e, tz = r.value, zones[r.value.tenant_id]
            tags = groups.get(f"{e.tenant_id}:{e.group_id}", {}).get("tags", [])
            if (c := counting.contribution(e, tz)) is not None:
                found["group"].append(c)
            tenant_days = counting.tenant_contributions(e, r.partition, tz)
            joined = resolved.get(e.event_id)
            found["livecode"] += counting.livecode_contributions(e, r.partition, tz, joined)
            if (m := counting.group_members(e)) is not None:
                found["members"].append(m)
            shares = cohort_shares(e, joinings.get(member_id(e), []), tz)
            by_family = counting.cohort_contributions(e, shares, r.partition, tz)
            for family in ("group", "livecode"):
                found[family] += by_family[family]
            tenant_days += by_family["tenant"]
            found["tenant"] += tenant_days
            found["series"] += [s for c in tenant_days if (s := counting.in_series(c, tags))]
            metrics.EVENTS_ANALYZED.labels(e.WhichOneof("payload") or "").inc()
        await self.group_days.absorb(found["group"])
        await self.tenant_days.absorb(found["tenant"])
        await self.livecode_days.absorb(found["livecode"])
        await self.series_days.absorb(found["series"])
        await self.members_now.absorb(found["members"])
        await self.groups.absorb(events, zones, groups)
