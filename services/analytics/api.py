"""HTTP: daily statistics (API.md), as JSON or CSV (`?format=csv`, the same rows)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from services.analytics.counting import GROUP_DAY_FIELDS
from services.analytics.queries import DAY, DAY_RULE, Row, Statistics
from services.analytics.statistics import TENANT_DAY_FIELDS
from services.runtime.http import IdInPath, Viewer, provided
from services.runtime.openapi import CSV


def _respond(rows: list[Row], fmt: str, columns: tuple[str, ...]) -> Response:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["date", *columns])
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return JSONResponse({"days": rows})


Asked = Annotated[Statistics, Depends(provided(Statistics))]
From = Annotated[str | None, Query(alias="from", pattern=DAY, description=DAY_RULE)]
To = Annotated[str | None, Query(alias="to", pattern=DAY, description=DAY_RULE)]
Format = Literal["json", "csv"]
router = APIRouter(prefix="/v1/stats", tags=["statistics"])


@router.get("/daily", responses=CSV)
async def tenant_daily_stats(
    principal: Viewer, start: From = None, end: To = None, format: Format = "json", *, asked: Asked
) -> Response:
    """The tenant's day as WeCom counts it: groups and members in all, new, and active, and the
    messages. Totals are at the end of each day."""
    rows = await asked.tenant_days(principal.tenant_id, start, end)
    return _respond(rows, format, TENANT_DAY_FIELDS)


@router.get("/groups/{group_id}/daily", responses=CSV)
async def group_daily_stats(
    group_id: IdInPath,
    principal: Viewer,
    start: From = None,
    end: To = None,
    format: Format = "json",
    *,
    asked: Asked,
) -> Response:
    """One group's messages, active members, joins, leaves, kicks, violations, check-ins,
    auto-replies, welcomes and orders (their amount in the minor unit, 分) per day."""
    rows = await asked.group_days(principal.tenant_id, group_id, start, end)
    return _respond(rows, format, GROUP_DAY_FIELDS)
