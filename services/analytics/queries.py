"""The statistics the HTTP and gRPC APIs answer: days checked, counter documents read by `_id`
(a group's days by their ids, a tenant's as one `_id` range), rows folded by `statistics`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.analytics.counters import GROUP_DAILY, TENANT_DAILY
from services.analytics.counting import GROUP_DAY_FIELDS, group_day_id
from services.analytics.statistics import COUNTED, DELTAS, tenant_rows, totals_before
from services.analytics.zones import Zones
from services.runtime.refusals import Invalid
from services.runtime.store import Document, Store
from services.runtime.wellformed import key_part

MAX_DAYS = 366
# Days are written YYYY-MM-DD, nothing else ("0" or "0.5" are not days), within the years an
# event can have (wellformed: 1970..2100), so that no arithmetic on them overflows.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2099, 12, 31)
DAY = r"^\d{4}-\d{2}-\d{2}$"
DAY_RULE = "YYYY-MM-DD, a day in the tenant's time zone"

Row = dict[str, Any]


def parse_day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(field, f"not a day: {value!r}") from None
    if len(value) != len("YYYY-MM-DD") or not FIRST_DAY <= day <= LAST_DAY:
        raise Invalid(field, f"a day from {FIRST_DAY} to {LAST_DAY}, written YYYY-MM-DD")
    return day


def days_between(start: str | None, end: str | None, tz: ZoneInfo) -> list[date]:
    """The days asked for: `to` defaults to today, `from` to six days before it."""
    last = parse_day(end, "to") or datetime.now(UTC).astimezone(tz).date()
    first = parse_day(start, "from") or max(last - timedelta(days=6), FIRST_DAY)
    if first > last:
        raise Invalid("from", "must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise Invalid("to", f"at most {MAX_DAYS} days")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def day_range(tenant: str, days: Sequence[date]) -> Document:
    """The filter of documents `{tenant}:{day}:...` of `days`: a range of `_id`s (tenant ids
    have no ':', and the tenant is checked as well)."""
    first, after = f"{tenant}:{days[0].isoformat()}", f"{tenant}:{days[-1].isoformat()};"
    return {"_id": {"$gte": first, "$lt": after}, "tenant_id": tenant}


class Statistics:
    def __init__(self, store: Store, zones: Zones) -> None:
        self.group_daily, self.tenant_daily = store[GROUP_DAILY], store[TENANT_DAILY]
        self.zones = zones

    async def tenant_days(self, tenant: str, start: str | None, end: str | None) -> list[Row]:
        """The tenant's day as WeCom counts it; totals at the end of each day."""
        days = days_between(start, end, await self.zones.zone(tenant))
        # Documents are `{tenant}:{day}:{partition}`: every day before a range is one too.
        first = f"{tenant}:{days[0].isoformat()}"
        earlier = self.tenant_daily.find(
            {"_id": {"$gte": f"{tenant}:", "$lt": first}, "tenant_id": tenant},
            dict.fromkeys(DELTAS, 1),
        )
        before = totals_before([d async for d in earlier])
        counted = {"date": 1, **dict.fromkeys(COUNTED, 1)}
        query = day_range(tenant, days)
        return tenant_rows(days, [d async for d in self.tenant_daily.find(query, counted)], before)

    async def group_days(
        self, tenant: str, group_id: str, start: str | None, end: str | None
    ) -> list[Row]:
        """One group's days: zeros for the days nothing happened."""
        key_part("group_id", group_id)
        days = days_between(start, end, await self.zones.zone(tenant))
        rows: dict[str, Row] = {
            d.isoformat(): {"date": d.isoformat(), **dict.fromkeys(GROUP_DAY_FIELDS, 0)}
            for d in days
        }
        ids = [group_day_id(tenant, group_id, d) for d in days]
        answered = {"date": 1, "posters": 1, **dict.fromkeys(GROUP_DAY_FIELDS, 1)}
        async for doc in self.group_daily.find(
            {"_id": {"$in": ids}, "tenant_id": tenant}, answered
        ):
            row = rows[doc["date"]]
            for name in GROUP_DAY_FIELDS:
                row[name] = int(doc.get(name, 0))
            row["active_members"] = len(doc.get("posters", []))
        return list(rows.values())
