"""gRPC: `shequn.v1.CampaignService`, the same operations as the HTTP API."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from services.campaign.operations import Operations
from services.gen.shequn.v1 import campaign_pb2 as pb
from services.gen.shequn.v1 import campaign_pb2_grpc
from services.runtime.auth import Authenticator, Role
from services.runtime.rpc import (
    Context,
    GrpcService,
    answers_refusals,
    authenticate,
    struct_of,
)


class CampaignServicer(campaign_pb2_grpc.CampaignServiceServicer):
    def __init__(self, ops: Operations, auth: Authenticator) -> None:
        self.ops, self.auth = ops, auth

    @answers_refusals
    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.ScheduleReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        body = json_format.MessageToDict(request.schedule)
        made = await self.ops.create_schedule(principal.tenant_id, body)
        return await self._schedule(principal.tenant_id, made["schedule_id"])

    @answers_refusals
    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Context
    ) -> pb.ScheduleReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return await self._schedule(principal.tenant_id, request.schedule_id)

    async def _schedule(self, tenant_id: str, schedule_id: str) -> pb.ScheduleReply:
        found = await self.ops.schedule(tenant_id, schedule_id)
        return pb.ScheduleReply(schedule_id=schedule_id, schedule=struct_of(found))

    @answers_refusals
    async def ListScheduleRuns(
        self, request: pb.ListScheduleRunsRequest, context: Context
    ) -> pb.ScheduleRunsReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.schedule_runs(
            principal.tenant_id, request.schedule_id, request.limit or 50
        )
        return pb.ScheduleRunsReply(runs=[struct_of(r) for r in found["runs"]])

    @answers_refusals
    async def Broadcast(self, request: pb.BroadcastRequest, context: Context) -> pb.BroadcastReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        body = {
            "client_id": request.client_id or None,
            "text": request.text,
            "groups": list(request.groups) or None,
            "tag": request.tag or None,
            "owner": request.owner or None,
        }
        sent = await self.ops.broadcast(principal.tenant_id, body)
        skipped = [pb.Skipped(**s) for s in sent["skipped"]]
        return pb.BroadcastReply(broadcast_id=sent["broadcast_id"], skipped=skipped)

    @answers_refusals
    async def GetBroadcast(
        self, request: pb.GetBroadcastRequest, context: Context
    ) -> pb.BroadcastCountsReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.broadcast_counts(principal.tenant_id, request.broadcast_id)
        return pb.BroadcastCountsReply(
            broadcast_id=found["broadcast_id"],
            counts=found["counts"],
            skipped=[pb.Skipped(**s) for s in found["skipped"]],
        )

    @answers_refusals
    async def CreateLiveCode(
        self, request: pb.CreateLiveCodeRequest, context: Context
    ) -> pb.LiveCodeReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        body = {
            "code": request.code,
            "groups": list(request.groups),
            "capacity": request.capacity or 200,
            "channel": request.channel,
        }
        return _livecode(await self.ops.create_livecode(principal.tenant_id, body))

    @answers_refusals
    async def GetLiveCode(
        self, request: pb.GetLiveCodeRequest, context: Context
    ) -> pb.LiveCodeReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return _livecode(await self.ops.livecode(principal.tenant_id, request.code))

    @answers_refusals
    async def CreateCoupon(
        self, request: pb.CreateCouponRequest, context: Context
    ) -> pb.CreateCouponReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        body = {
            "name": request.name,
            "value": request.value,
            "stock": request.stock,
            "valid_days": request.valid_days or 30,
        }
        return pb.CreateCouponReply(**await self.ops.create_coupon(principal.tenant_id, body))

    @answers_refusals
    async def GetCoupon(self, request: pb.GetCouponRequest, context: Context) -> pb.CouponReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return pb.CouponReply(**await self.ops.coupon(principal.tenant_id, request.coupon_id))

    @answers_refusals
    async def IssueCoupon(
        self, request: pb.IssueCouponRequest, context: Context
    ) -> pb.IssuedCoupon:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        issued = await self.ops.issue_coupon(
            principal.tenant_id, request.coupon_id, request.member_id, request.issue_id or None
        )
        return pb.IssuedCoupon(**issued)


def _livecode(found: dict[str, Any]) -> pb.LiveCodeReply:
    groups = [pb.GroupPlaces(**g) for g in found["groups"]]
    return pb.LiveCodeReply(**{**found, "groups": groups})


def service(ops: Operations, auth: Authenticator) -> GrpcService:
    return GrpcService(
        CampaignServicer(ops, auth),
        campaign_pb2_grpc.add_CampaignServiceServicer_to_server,
        pb.DESCRIPTOR.services_by_name["CampaignService"].full_name,
    )
