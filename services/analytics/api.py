"""HTTP: daily statistics (API.md), as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from services.analytics.counters import GROUP_DAILY, TENANT_DAILY
from services.analytics.counting import GROUP_DAY_FIELDS, group_day_id
from services.analytics.statistics import DELTAS, TENANT_DAY_FIELDS, tenant_rows, totals_before
from services.runtime.http import IdInPath, Viewer, provided
from services.runtime.openapi import CSV
from services.runtime.refusals import Invalid
from services.runtime.settings import Settings
from services.runtime.store import Store

MAX_DAYS = 366
# Days are written YYYY-MM-DD, nothing else ("0" or "0.5" are not days), within the years an
# event can have (wellformed: 1970..2100), so that no arithmetic on them overflows.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2099, 12, 31)
DAY = r"^\d{4}-\d{2}-\d{2}$"
DAY_RULE = "YYYY-MM-DD, a day in the tenant's time zone"


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(field, f"not a day: {value!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Invalid(field, f"a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def _days(start: str | None, end: str | None, tz: ZoneInfo) -> list[date]:
    last = _day(end, "to") or datetime.now(UTC).astimezone(tz).date()
    first = _day(start, "from") or max(last - timedelta(days=6), FIRST_DAY)
    if first > last:
        raise Invalid("from", "must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise Invalid("to", f"at most {MAX_DAYS} days")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _respond(rows: list[dict[str, Any]], fmt: str, columns: tuple[str, ...]) -> Response:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["date", *columns])
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return JSONResponse({"days": rows})


Stored = Annotated[Store, Depends(provided(Store))]
Configured = Annotated[Settings, Depends(provided(Settings))]
router = APIRouter(prefix="/v1/stats", tags=["statistics"])
From = Annotated[str | None, Query(alias="from", pattern=DAY, description=DAY_RULE)]
To = Annotated[str | None, Query(alias="to", pattern=DAY, description=DAY_RULE)]


@router.get("/daily", responses=CSV)
async def tenant_daily_stats(
    principal: Viewer,
    start: From = None,
    end: To = None,
    format: Literal["json", "csv"] = "json",
    *,
    store: Stored,
    settings: Configured,
) -> Response:
    """The tenant's day as WeCom counts it: groups and members in all, new, and active, and the
    messages. Totals are at the end of each day."""
    days = _days(start, end, ZoneInfo(settings.default_timezone))
    tenant, daily = principal.tenant_id, store[TENANT_DAILY]
    # Documents are `{tenant}:{day}:{partition}`: a day, or every day before one, is a range of
    # `_id`s (tenant ids have no ':', and the tenant is checked as well).
    first, after = f"{tenant}:{days[0].isoformat()}", f"{tenant}:{days[-1].isoformat()};"
    earlier = daily.find(
        {"_id": {"$gte": f"{tenant}:", "$lt": first}, "tenant_id": tenant},
        dict.fromkeys(DELTAS, 1),
    )
    before = totals_before([d async for d in earlier])
    counted = {"date": 1, **dict.fromkeys((*DELTAS, *TENANT_DAY_FIELDS), 1)}
    found = daily.find({"_id": {"$gte": first, "$lt": after}, "tenant_id": tenant}, counted)
    rows = tenant_rows(days, [d async for d in found], before)
    return _respond(rows, format, TENANT_DAY_FIELDS)


@router.get("/groups/{group_id}/daily", responses=CSV)
async def group_daily_stats(
    group_id: IdInPath,
    principal: Viewer,
    start: From = None,
    end: To = None,
    format: Literal["json", "csv"] = "json",
    *,
    store: Stored,
    settings: Configured,
) -> Response:
    """One group's messages, active members, joins, leaves, kicks, violations, check-ins,
    welcomes and orders (their amount in the minor unit, 分) per day."""
    days = _days(start, end, ZoneInfo(settings.default_timezone))
    ids = [group_day_id(principal.tenant_id, group_id, d) for d in days]
    rows: dict[str, dict[str, Any]] = {
        d.isoformat(): {"date": d.isoformat(), **dict.fromkeys(GROUP_DAY_FIELDS, 0)} for d in days
    }
    query = {"_id": {"$in": ids}, "tenant_id": principal.tenant_id}
    answered = {"date": 1, "posters": 1, **dict.fromkeys(GROUP_DAY_FIELDS, 1)}
    async for doc in store[GROUP_DAILY].find(query, answered):
        row = rows[doc["date"]]
        for name in GROUP_DAY_FIELDS:
            row[name] = int(doc.get(name, 0))
        row["active_members"] = len(doc.get("posters", []))
    return _respond(list(rows.values()), format, GROUP_DAY_FIELDS)
