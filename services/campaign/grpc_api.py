"""gRPC: `shequn.v1.CampaignService`, the same operations as the HTTP API."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from services.campaign.group_operations import GroupOperations
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
    def __init__(self, ops: Operations, groups: GroupOperations, auth: Authenticator) -> None:
        self.ops, self.groups, self.auth = ops, groups, auth

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
            "room_base_name": request.room_base_name,
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

    async def _listed(
        self, kind: str, request: pb.Page, context: Context, key: str = ""
    ) -> pb.Records:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.listed(
            principal.tenant_id, kind, request.limit or 100, request.after or None
        )
        return _records(found[key or kind], found["next"])

    @answers_refusals
    async def ListSchedules(self, request: pb.Page, context: Context) -> pb.Records:
        return await self._listed("schedules", request, context)

    @answers_refusals
    async def ListBroadcasts(self, request: pb.Page, context: Context) -> pb.Records:
        return await self._listed("broadcasts", request, context)

    @answers_refusals
    async def ListLiveCodes(self, request: pb.Page, context: Context) -> pb.Records:
        return await self._listed("livecodes", request, context)

    @answers_refusals
    async def ListCoupons(self, request: pb.Page, context: Context) -> pb.Records:
        return await self._listed("coupons", request, context)

    @answers_refusals
    async def ListFissionTasks(self, request: pb.Page, context: Context) -> pb.Records:
        return await self._listed("fission_tasks", request, context, "tasks")

    @answers_refusals
    async def ListHandovers(self, request: pb.Page, context: Context) -> pb.Records:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.groups.handovers_page(
            principal.tenant_id, request.limit or 100, request.after or None
        )
        return _records(found["handovers"], found["next"])

    @answers_refusals
    async def CreateFissionTask(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        return _record(await self.ops.create_fission_task(principal.tenant_id, _body(request)))

    @answers_refusals
    async def GetFissionTask(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return _record(await self.ops.fission_task(principal.tenant_id, request.id))

    @answers_refusals
    async def IssueInviteCode(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        body = _body(request)
        found = await self.ops.invite_code(
            principal.tenant_id,
            request.id,
            str(body.get("member_id", "")),
            str(body["group_id"]) if body.get("group_id") else None,
        )
        return _record(found)

    @answers_refusals
    async def GetFissionFunnel(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return _record(await self.ops.fission_funnel(principal.tenant_id, request.id))

    @answers_refusals
    async def ListInviters(self, request: pb.Page, context: Context) -> pb.Records:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.inviters(
            principal.tenant_id, request.id, request.limit or 100, request.after or None
        )
        return _records(found["inviters"], found["next"])

    @answers_refusals
    async def SetActivityGroup(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        found = await self.groups.set_activity(principal.tenant_id, request.id, _body(request))
        return _record(found)

    @answers_refusals
    async def GetActivityGroup(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return _record(await self.groups.activity(principal.tenant_id, request.id))

    @answers_refusals
    async def ListActivityGroups(self, request: pb.Page, context: Context) -> pb.Records:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.groups.activities_page(
            principal.tenant_id, request.limit or 100, request.after or None
        )
        return _records(found["groups"], found["next"])

    @answers_refusals
    async def StartHandover(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        return _record(await self.groups.start_handover(principal.tenant_id, _body(request)))

    @answers_refusals
    async def GetHandover(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return _record(await self.groups.handover(principal.tenant_id, request.id))

    @answers_refusals
    async def PutNotice(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        found = await self.groups.put_notice(principal.tenant_id, request.id, _body(request))
        return _record(found)

    @answers_refusals
    async def ListNoticeDrift(self, request: pb.Page, context: Context) -> pb.Records:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.groups.drift(
            principal.tenant_id, request.limit or 100, request.after or None
        )
        return _records(found["groups"], found["next"])

    @answers_refusals
    async def PutTierLadder(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        return _record(await self.groups.put_ladder(principal.tenant_id, _body(request)))

    @answers_refusals
    async def GetTierLadder(self, request: pb.Body, context: Context) -> pb.Record:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return _record(await self.groups.ladder(principal.tenant_id))

    @answers_refusals
    async def IssueCoupon(
        self, request: pb.IssueCouponRequest, context: Context
    ) -> pb.IssuedCoupon:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        issued = await self.ops.issue_coupon(
            principal.tenant_id, request.coupon_id, request.member_id, request.issue_id or None
        )
        return pb.IssuedCoupon(**issued)


def _body(request: pb.Body) -> dict[str, Any]:
    return json_format.MessageToDict(request.body)


def _record(found: dict[str, Any]) -> pb.Record:
    return pb.Record(record=struct_of(found))


def _records(items: list[dict[str, Any]], more: str | None) -> pb.Records:
    return pb.Records(items=[struct_of(i) for i in items], next=more or "")


def _livecode(found: dict[str, Any]) -> pb.LiveCodeReply:
    groups = [pb.GroupPlaces(**g) for g in found["groups"]]
    way = found.get("wecom_join_way")
    return pb.LiveCodeReply(
        **{**found, "groups": groups, "wecom_join_way": struct_of(way) if way else None}
    )


def service(ops: Operations, groups: GroupOperations, auth: Authenticator) -> GrpcService:
    return GrpcService(
        CampaignServicer(ops, groups, auth),
        campaign_pb2_grpc.add_CampaignServiceServicer_to_server,
        pb.DESCRIPTOR.services_by_name["CampaignService"].full_name,
    )
