"""gRPC: `shequn.v1.AnalyticsService`, the same queries as the HTTP API."""

from __future__ import annotations

from services.analytics.queries import Statistics
from services.gen.shequn.v1 import analytics_pb2 as pb
from services.gen.shequn.v1 import analytics_pb2_grpc
from services.runtime.auth import Authenticator, Role
from services.runtime.rpc import Context, GrpcService, answers_refusals, authenticate


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, asked: Statistics, auth: Authenticator) -> None:
        self.asked, self.auth = asked, auth

    @answers_refusals
    async def GetTenantDaily(
        self, request: pb.TenantDailyRequest, context: Context
    ) -> pb.TenantDailyReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        rows = await self.asked.tenant_days(principal.tenant_id, request.from_day, request.to_day)
        return pb.TenantDailyReply(days=[pb.TenantDay(**row) for row in rows])

    @answers_refusals
    async def GetGroupDaily(
        self, request: pb.GroupDailyRequest, context: Context
    ) -> pb.GroupDailyReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        rows = await self.asked.group_days(
            principal.tenant_id, request.group_id, request.from_day, request.to_day
        )
        return pb.GroupDailyReply(days=[pb.GroupDay(**row) for row in rows])


def service(asked: Statistics, auth: Authenticator) -> GrpcService:
    return GrpcService(
        AnalyticsServicer(asked, auth),
        analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
        pb.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
    )
