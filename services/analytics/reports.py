"""The reports the HTTP and gRPC APIs answer, over a range of days and the whole tenant or some
of its groups (by id, or by series tag): the documents read by `_id` (a tenant's days, a live
code's days, its groups: each one range; chosen groups' days by their ids), only the fields
each report reads, folded by `tables`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.analytics import tables
from services.analytics.counters import GROUP_DAILY, LIVECODE_DAILY, SERIES_DAILY, TENANT_DAILY
from services.analytics.counting import MONEY_FIELDS, group_day_id, map_key
from services.analytics.projections import GROUPS
from services.analytics.queries import day_range, days_between, parse_day
from services.analytics.zones import Zones
from services.runtime.instants import from_stamp
from services.runtime.refusals import Invalid
from services.runtime.store import Document, Store
from services.runtime.wellformed import key_part, page_args

Row = tables.Row
MAX_GROUP_DAYS = 20_000  # chosen groups times days: read by id, about a second at most


@dataclass(frozen=True)
class Scope:
    """What a report is asked about: days, and the groups (None: the whole tenant)."""

    start: str | None = None
    end: str | None = None
    group_ids: Sequence[str] = ()
    tag: str | None = None


@dataclass(frozen=True)
class Page:
    after: str | None = None
    limit: int = 100


@dataclass
class Table:
    rows: list[Row]
    next: str | None = None
    total: Row | None = None


def _scoped(scope: Scope) -> bool:
    """Whether the scope names groups (by id or tag), each checked; False: the whole tenant."""
    for g in scope.group_ids:
        key_part("group_id", g)
    if scope.tag is not None:
        key_part("tag", scope.tag)
    return scope.tag is not None or bool(scope.group_ids)


def _asked_about(scope: Scope, groups: Iterable[Document]) -> list[str]:
    """The ids of a scope's groups, in order: those named, of its tag's `groups` if it has one."""
    chosen = set(scope.group_ids)
    if scope.tag is not None:
        tagged = {g["group_id"] for g in groups if scope.tag in g.get("tags", [])}
        chosen = chosen & tagged if scope.group_ids else tagged
    return sorted(chosen)


class Reports:
    def __init__(self, store: Store, zones: Zones) -> None:
        self.group_daily, self.tenant_daily = store[GROUP_DAILY], store[TENANT_DAILY]
        self.livecode_daily, self.groups = store[LIVECODE_DAILY], store[GROUPS]
        self.series_daily = store[SERIES_DAILY]
        self.zones = zones

    async def _groups(self, tenant: str, projection: Document | None = None) -> list[Document]:
        where = {"_id": {"$gte": f"{tenant}:", "$lt": f"{tenant};"}, "tenant_id": tenant}
        return [d async for d in self.groups.find(where, projection)]

    async def _chosen(self, tenant: str, scope: Scope) -> list[str] | None:
        """The groups asked about, in id order; None for the whole tenant."""
        if not _scoped(scope):
            return None
        tagged = await self._groups(tenant, {"group_id": 1, "tags": 1}) if scope.tag else []
        return _asked_about(scope, tagged)

    async def _days(self, tenant: str, scope: Scope) -> tuple[list[date], date]:
        zone = await self.zones.zone(tenant)
        return days_between(scope.start, scope.end, zone), datetime.now(UTC).astimezone(zone).date()

    async def _day_docs(
        self, tenant: str, days: Sequence[date], groups: list[str] | None, fields: Sequence[str]
    ) -> list[Document]:
        """Day documents with the `fields` a report reads (not the posters, the tokens, the
        other maps: most of a document): the tenant's (one range), or the chosen groups'."""
        shown = dict.fromkeys(("date", "group_id", *fields), 1)
        if groups is None:
            return [d async for d in self.tenant_daily.find(day_range(tenant, days), shown)]
        if len(groups) * len(days) > MAX_GROUP_DAYS:
            raise Invalid("group_id", f"at most {MAX_GROUP_DAYS} group-days: fewer groups or days")
        ids = [group_day_id(tenant, g, d) for g in groups for d in days]
        where = {"_id": {"$in": ids}, "tenant_id": tenant}
        return [d async for d in self.group_daily.find(where, shown)]

    async def _selected(
        self, tenant: str, days: Sequence[date], scope: Scope, fields: Sequence[str]
    ) -> tuple[list[Document], list[str] | None]:
        """The day documents of what the scope asks about, and the groups chosen (None for the
        tenant or a whole series). A series (a tag alone) is read from its map in the
        series' days: its groups' days counted while they had the tag."""
        if scope.tag is None or scope.group_ids:
            chosen = await self._chosen(tenant, scope)
            return await self._day_docs(tenant, days, chosen, fields), chosen
        tag = map_key(key_part("tag", scope.tag))
        found = self.series_daily.find(day_range(tenant, days), {"date": 1, tag: 1})
        return [{"date": d["date"], **(d.get(tag) or {})} async for d in found], None

    async def cohorts(self, tenant: str, scope: Scope, page: Page) -> Table:
        page_args(page.limit, page.after)
        days, today = await self._days(tenant, scope)
        docs, _ = await self._selected(tenant, days, scope, tables.COHORT_READS)
        rows = tables.cohorts(days, docs, today)
        return Table(*tables.page(rows, "date", page.after, page.limit))

    async def aarrr(self, tenant: str, scope: Scope, page: Page) -> Table:
        """One row for the tenant or a series, or one per group asked about."""
        page_args(page.limit, page.after)
        days, _ = await self._days(tenant, scope)
        docs, groups = await self._selected(tenant, days, scope, tables.AARRR_READS)
        if groups is None:
            return Table([tables.aarrr("", docs)])
        by_group: dict[str, list[Document]] = {g: [] for g in groups}
        for d in docs:
            by_group[d["group_id"]].append(d)
        rows = [tables.aarrr(g, by_group[g]) for g in groups]
        return Table(*tables.page(rows, "group_id", page.after, page.limit))

    async def livecodes(self, tenant: str, scope: Scope, livecode: str | None, page: Page) -> Table:
        page_args(page.limit, page.after)
        if livecode is not None:
            key_part("livecode", livecode)
        days, _ = await self._days(tenant, scope)
        docs = [d async for d in self.livecode_daily.find(day_range(tenant, days), {"codes": 1})]
        rows = [r for r in tables.livecode_funnels(docs) if livecode in (None, r["livecode"])]
        return Table(*tables.page(rows, "livecode", page.after, page.limit))

    async def leaderboard(self, tenant: str, board: str, scope: Scope, page: Page) -> Table:
        if board not in tables.BOARDS:
            raise Invalid("board", f"one of {', '.join(tables.BOARDS)}")
        if page.after is not None and not page.after.isdigit():
            raise Invalid("after", "the rank the page before ended with")
        page_args(page.limit, None)
        days, _ = await self._days(tenant, scope)
        chosen = await self._chosen(tenant, scope)
        docs = await self._day_docs(tenant, days, chosen, [tables.BOARDS[board][0]])
        rows = tables.leaderboard(docs, board)
        return Table(*tables.page(rows, "rank", page.after, page.limit))

    async def roi(self, tenant: str, scope: Scope, page: Page) -> Table:
        page_args(page.limit, page.after)
        days, _ = await self._days(tenant, scope)
        docs, _ = await self._selected(tenant, days, scope, MONEY_FIELDS)
        rows, total = tables.roi(days, docs)
        shown, after = tables.page(rows, "date", page.after, page.limit)
        return Table(shown, after, total)

    async def dead_groups(self, tenant: str, on: str | None, scope: Scope, page: Page) -> Table:
        page_args(page.limit, page.after)
        zone = await self.zones.zone(tenant)
        day = parse_day(on, "on") or datetime.now(UTC).astimezone(zone).date()
        groups = await self._groups(tenant)
        if _scoped(scope):
            chosen = set(_asked_about(scope, groups))
            groups = [g for g in groups if g["group_id"] in chosen]
        for g in groups:
            for field, stamped in (("first_day", "first_seen"), ("last_day", "last_message")):
                if g.get(stamped):
                    g[field] = from_stamp(g[stamped]).astimezone(zone).date().isoformat()
        rows = tables.dead_groups(groups, day)
        return Table(*tables.page(rows, "group_id", page.after, page.limit))
