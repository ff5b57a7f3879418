"""gRPC: `shequn.v1.AnalyticsService`, the same queries as the HTTP API."""

from __future__ import annotations

from typing import Any

from services.analytics.queries import Statistics
from services.analytics.reports import Page, Reports, Scope, Table
from services.gen.shequn.v1 import analytics_pb2 as pb
from services.gen.shequn.v1 import analytics_pb2_grpc
from services.runtime.auth import Authenticator, Principal, Role
from services.runtime.rpc import Context, GrpcService, answers_refusals, authenticate


def _scope(r: pb.ReportRequest) -> Scope:
    return Scope(r.from_day or None, r.to_day or None, list(r.group_ids), r.tag or None)


def _page(after: str, limit: int) -> Page:
    return Page(after or None, limit or 100)


def _set(row: dict[str, Any]) -> dict[str, Any]:
    """A row's fields that have a value (None is an unset optional field)."""
    return {k: v for k, v in row.items() if v is not None}


def _rows(kind: Any, table: Table) -> dict[str, Any]:
    return {"rows": [kind(**_set(row)) for row in table.rows], "next": table.next or ""}


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, asked: Statistics, reports: Reports, auth: Authenticator) -> None:
        self.asked, self.reports, self.auth = asked, reports, auth

    async def _viewer(self, context: Context) -> Principal:
        return await authenticate(context, self.auth, Role.VIEWER)

    @answers_refusals
    async def GetTenantDaily(
        self, request: pb.TenantDailyRequest, context: Context
    ) -> pb.TenantDailyReply:
        principal = await self._viewer(context)
        rows = await self.asked.tenant_days(principal.tenant_id, request.from_day, request.to_day)
        return pb.TenantDailyReply(days=[pb.TenantDay(**row) for row in rows])

    @answers_refusals
    async def GetGroupDaily(
        self, request: pb.GroupDailyRequest, context: Context
    ) -> pb.GroupDailyReply:
        principal = await self._viewer(context)
        rows = await self.asked.group_days(
            principal.tenant_id, request.group_id, request.from_day, request.to_day
        )
        return pb.GroupDailyReply(days=[pb.GroupDay(**row) for row in rows])

    @answers_refusals
    async def GetRetention(self, request: pb.ReportRequest, context: Context) -> pb.RetentionReply:
        tenant = (await self._viewer(context)).tenant_id
        page = _page(request.after, request.limit)
        table = await self.reports.cohorts(tenant, _scope(request), page)
        return pb.RetentionReply(**_rows(pb.Cohort, table))

    @answers_refusals
    async def GetFunnel(self, request: pb.ReportRequest, context: Context) -> pb.FunnelReply:
        tenant = (await self._viewer(context)).tenant_id
        page = _page(request.after, request.limit)
        table = await self.reports.aarrr(tenant, _scope(request), page)
        return pb.FunnelReply(**_rows(pb.AarrrRow, table))

    @answers_refusals
    async def GetLivecodeFunnels(
        self, request: pb.LivecodeFunnelsRequest, context: Context
    ) -> pb.LivecodeFunnelsReply:
        tenant = (await self._viewer(context)).tenant_id
        scope = Scope(request.from_day or None, request.to_day or None)
        page = _page(request.after, request.limit)
        table = await self.reports.livecodes(tenant, scope, request.livecode or None, page)
        return pb.LivecodeFunnelsReply(**_rows(pb.LivecodeFunnel, table))

    @answers_refusals
    async def GetLeaderboard(
        self, request: pb.LeaderboardRequest, context: Context
    ) -> pb.LeaderboardReply:
        tenant = (await self._viewer(context)).tenant_id
        scope, page = _scope(request.scope), _page(request.scope.after, request.scope.limit)
        table = await self.reports.leaderboard(tenant, request.board, scope, page)
        return pb.LeaderboardReply(**_rows(pb.LeaderboardEntry, table))

    @answers_refusals
    async def GetRoi(self, request: pb.ReportRequest, context: Context) -> pb.RoiReply:
        tenant = (await self._viewer(context)).tenant_id
        page = _page(request.after, request.limit)
        table = await self.reports.roi(tenant, _scope(request), page)
        total = pb.RoiDay(**_set(table.total or {}))
        return pb.RoiReply(**_rows(pb.RoiDay, table), total=total)

    @answers_refusals
    async def GetDeadGroups(
        self, request: pb.DeadGroupsRequest, context: Context
    ) -> pb.DeadGroupsReply:
        tenant = (await self._viewer(context)).tenant_id
        scope = Scope(group_ids=list(request.group_ids), tag=request.tag or None)
        page = _page(request.after, request.limit)
        table = await self.reports.dead_groups(tenant, request.on or None, scope, page)
        return pb.DeadGroupsReply(**_rows(pb.DeadGroup, table))


def service(asked: Statistics, reports: Reports, auth: Authenticator) -> GrpcService:
    return GrpcService(
        AnalyticsServicer(asked, reports, auth),
        analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
        pb.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
    )
