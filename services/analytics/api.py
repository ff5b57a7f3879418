"""HTTP: daily statistics (API.md), as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pymongo.asynchronous.collection import AsyncCollection

from services.analytics.counting import GROUP_DAY_FIELDS, group_day_ids
from services.runtime.http import Viewer
from services.runtime.store import Document

MAX_DAYS = 366


def _days(start: date | None, end: date | None, tz: ZoneInfo) -> list[date]:
    end = end or datetime.now(UTC).astimezone(tz).date()
    start = start or end - timedelta(days=6)
    if start > end:
        raise HTTPException(422, {"error": "from: must not be after to", "field": "from"})
    if (end - start).days >= MAX_DAYS:
        raise HTTPException(422, {"error": f"to: at most {MAX_DAYS} days", "field": "to"})
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _respond(rows: list[dict[str, Any]], fmt: str, columns: tuple[str, ...]) -> Response:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["date", *columns])
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return JSONResponse({"days": rows})


def router(group_daily: AsyncCollection[Document], tz: ZoneInfo) -> APIRouter:
    api = APIRouter(prefix="/v1/stats", tags=["statistics"])

    @api.get("/groups/{group_id}/daily")
    async def group_daily_stats(
        group_id: str,
        principal: Viewer,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        format: Literal["json", "csv"] = "json",
    ) -> Response:
        """One group's messages, active members, joins, leaves and kicks per day."""
        days = _days(start, end, tz)
        ids = [i for d in days for i in group_day_ids(principal.tenant_id, group_id, d)]
        rows: dict[str, dict[str, Any]] = {
            d.isoformat(): {"date": d.isoformat(), **dict.fromkeys(GROUP_DAY_FIELDS, 0)}
            for d in days
        }
        posters: dict[str, set[str]] = {d: set() for d in rows}
        query = {"_id": {"$in": ids}, "tenant_id": principal.tenant_id}
        async for doc in group_daily.find(query, {"absorbed": 0}):
            row = rows[doc["date"]]
            for name in GROUP_DAY_FIELDS:
                row[name] += int(doc.get(name, 0))
            posters[doc["date"]].update(doc.get("posters", []))
        for date_, row in rows.items():
            row["active_members"] = len(posters[date_])
        return _respond(list(rows.values()), format, GROUP_DAY_FIELDS)

    return api
