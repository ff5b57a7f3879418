"""HTTP: daily statistics (API.md) and the reports, as JSON or CSV (`?format=csv` or
`Accept: text/csv`: the same rows)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.analytics import tables
from services.analytics.counting import GROUP_DAY_FIELDS
from services.analytics.queries import DAY, DAY_RULE, Row, Statistics
from services.analytics.reports import Page, Reports, Scope, Table
from services.analytics.statistics import TENANT_DAY_FIELDS
from services.analytics.zones import Zones
from services.runtime.http import Admin, IdInPath, PageAfter, PageLimit, Viewer, provided
from services.runtime.instants import TimeZoneName
from services.runtime.openapi import CSV


def _csv(rows: list[Row], columns: tuple[str, ...]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")


From = Annotated[str | None, Query(alias="from", pattern=DAY, description=DAY_RULE)]
To = Annotated[str | None, Query(alias="to", pattern=DAY, description=DAY_RULE)]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="csv: the same rows as CSV (so does `Accept: text/csv`)"),
]
GroupIds = Annotated[
    list[str], Query(alias="group_id", description="only these groups (repeat the parameter)")
]
Tag = Annotated[str | None, Query(description="only the groups of this series tag")]


# The parameters every report shares, as dependencies (async: FastAPI runs a plain function's
# in a worker thread).
async def _wants_csv(request: Request, format: Format = None) -> bool:
    if format is not None:
        return format == "csv"
    return "text/csv" in request.headers.get("accept", "")


async def _scope(
    start: From = None,
    end: To = None,
    group_ids: GroupIds = [],  # noqa: B006 (FastAPI copies it)
    tag: Tag = None,
) -> Scope:
    return Scope(start, end, group_ids, tag)


async def _page(after: PageAfter = None, limit: PageLimit = 100) -> Page:
    return Page(after, limit)


AsCsv = Annotated[bool, Depends(_wants_csv)]
Scoped = Annotated[Scope, Depends(_scope)]
Paged = Annotated[Page, Depends(_page)]
Asked = Annotated[Statistics, Depends(provided(Statistics))]
Reported = Annotated[Reports, Depends(provided(Reports))]
Zoned = Annotated[Zones, Depends(provided(Zones))]


def _days(rows: list[Row], as_csv: bool, columns: tuple[str, ...]) -> Response:
    return _csv(rows, ("date", *columns)) if as_csv else JSONResponse({"days": rows})


def _table(table: Table, as_csv: bool, columns: tuple[str, ...]) -> Response:
    if as_csv:
        return _csv(table.rows, columns)
    body: dict[str, Any] = {"rows": table.rows, "next": table.next}
    if table.total is not None:
        body["total"] = table.total
    return JSONResponse(body)


router = APIRouter(prefix="/v1/stats", tags=["statistics"])


@router.get("/daily", responses=CSV)
async def tenant_daily_stats(
    principal: Viewer, as_csv: AsCsv, start: From = None, end: To = None, *, asked: Asked
) -> Response:
    """The tenant's day as WeCom counts it: groups and members in all, new, and active, and the
    messages. Totals are at the end of each day."""
    rows = await asked.tenant_days(principal.tenant_id, start, end)
    return _days(rows, as_csv, TENANT_DAY_FIELDS)


@router.get("/groups/{group_id}/daily", responses=CSV)
async def group_daily_stats(
    group_id: IdInPath,
    principal: Viewer,
    as_csv: AsCsv,
    start: From = None,
    end: To = None,
    *,
    asked: Asked,
) -> Response:
    """One group's messages, active members, joins, leaves, kicks, violations, check-ins,
    auto-replies, welcomes and orders (their amount in the minor unit, 分) per day."""
    rows = await asked.group_days(principal.tenant_id, group_id, start, end)
    return _days(rows, as_csv, GROUP_DAY_FIELDS)


@router.get("/retention", responses=CSV)
async def retention_cohorts(
    principal: Viewer, scope: Scoped, page: Paged, as_csv: AsCsv, *, reports: Reported
) -> Response:
    """Retention cohorts by join day: members who joined, and for D1, D7 and D30 those still
    members at the end of that day and those who posted on it (null for a day not yet come)."""
    table = await reports.cohorts(principal.tenant_id, scope, page)
    return _table(table, as_csv, tables.COHORT_COLUMNS)


@router.get("/funnel", responses=CSV)
async def aarrr_funnel(
    principal: Viewer, scope: Scoped, page: Paged, as_csv: AsCsv, *, reports: Reported
) -> Response:
    """The AARRR funnel of the members who joined in the days: acquired (joined), activated
    (posted within 7 days), retained (posted on D7, on D30); revenue (orders in the days, their
    amount in 分) and referral (members who brought others in, and how many). One row for the
    tenant or the series of `tag` (`group_id` empty), or one per `group_id` asked about. A
    series counts its groups' days while they had its tag."""
    table = await reports.aarrr(principal.tenant_id, scope, page)
    return _table(table, as_csv, tables.AARRR_COLUMNS)


@router.get("/livecodes", responses=CSV)
async def livecode_funnels(
    principal: Viewer,
    page: Paged,
    as_csv: AsCsv,
    start: From = None,
    end: To = None,
    livecode: Annotated[str | None, Query(description="only this live code")] = None,
    *,
    reports: Reported,
) -> Response:
    """Each live code's funnel: scans → joins → stayed (still members at the end of D7) →
    activated (posted within 7 days); the same for fission invite codes into its pool, and
    the fission tasks completed."""
    table = await reports.livecodes(principal.tenant_id, Scope(start, end), livecode, page)
    return _table(table, as_csv, tables.LIVECODE_COLUMNS)


@router.get("/leaderboards/{board}", responses=CSV)
async def leaderboard(
    board: Literal["talkers", "inviters", "streaks"],
    principal: Viewer,
    scope: Scoped,
    page: Paged,
    as_csv: AsCsv,
    *,
    reports: Reported,
) -> Response:
    """Members ranked: talkers by messages, inviters by members they brought in, streaks by
    the longest check-in streak reached in the days. `after` is the last rank of a page."""
    table = await reports.leaderboard(principal.tenant_id, board, scope, page)
    return _table(table, as_csv, tables.LEADERBOARD_COLUMNS)


@router.get("/roi", responses=CSV)
async def campaign_roi(
    principal: Viewer, scope: Scoped, page: Paged, as_csv: AsCsv, *, reports: Reported
) -> Response:
    """Campaign ROI per day, and in all (`total`, JSON only): coupons redeemed and red packets
    paid against the orders credited to a campaign, live code or invite code, in 分."""
    table = await reports.roi(principal.tenant_id, scope, page)
    return _table(table, as_csv, tables.ROI_COLUMNS)


@router.get("/dead-groups", responses=CSV)
async def dead_groups(
    principal: Viewer,
    page: Paged,
    as_csv: AsCsv,
    on: Annotated[str | None, Query(pattern=DAY, description="the day judged; today")] = None,
    group_ids: GroupIds = [],  # noqa: B006
    tag: Tag = None,
    *,
    reports: Reported,
) -> Response:
    """Groups with no message in the 7 days to `on` (silent), or fewer than 5% of their members
    posting in them (inactive); a group first seen in those days is too new to judge. `tags`
    are `;`-separated in CSV."""
    scope = Scope(group_ids=group_ids, tag=tag)
    table = await reports.dead_groups(principal.tenant_id, on, scope, page)
    return _table(table, as_csv, tables.DEAD_COLUMNS)


class StatsSettings(BaseModel):
    timezone: TimeZoneName = None


@router.get("/settings")
async def stats_settings(principal: Viewer, *, zones: Zoned) -> StatsSettings:
    """The tenant's time zone, the one its days are counted in."""
    return StatsSettings(timezone=str(await zones.zone(principal.tenant_id)))


@router.put("/settings")
async def set_stats_settings(
    body: StatsSettings, principal: Admin, *, zones: Zoned
) -> StatsSettings:
    """Sets the tenant's time zone (IANA). Events from now on are counted in its days; days
    already counted stay as they were."""
    if body.timezone:
        await zones.set(principal.tenant_id, body.timezone)
    return StatsSettings(timezone=str(await zones.zone(principal.tenant_id)))
