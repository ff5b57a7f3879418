"""gRPC: `shequn.v1.EngagementService`, the same operations as the HTTP API."""

from __future__ import annotations

from google.protobuf import json_format

from services.engagement.operations import Operations
from services.gen.shequn.v1 import engagement_pb2 as pb
from services.gen.shequn.v1 import engagement_pb2_grpc
from services.runtime.auth import Authenticator, Role
from services.runtime.rpc import (
    Context,
    GrpcService,
    answers_refusals,
    authenticate,
    struct_of,
)


class EngagementServicer(engagement_pb2_grpc.EngagementServiceServicer):
    def __init__(self, ops: Operations, auth: Authenticator) -> None:
        self.ops, self.auth = ops, auth

    @answers_refusals
    async def GetSettings(
        self, request: pb.GetSettingsRequest, context: Context
    ) -> pb.SettingsReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return await self._reply(principal.tenant_id, request.group_id)

    @answers_refusals
    async def PutSettings(
        self, request: pb.PutSettingsRequest, context: Context
    ) -> pb.SettingsReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        body = json_format.MessageToDict(request.settings)
        if request.group_id:
            await self.ops.put_group_settings(principal.tenant_id, request.group_id, body)
        else:
            await self.ops.put_settings(principal.tenant_id, body)
        return await self._reply(principal.tenant_id, request.group_id)

    async def _reply(self, tenant_id: str, group_id: str) -> pb.SettingsReply:
        if not group_id:
            return pb.SettingsReply(settings=struct_of(await self.ops.settings(tenant_id)))
        found = await self.ops.settings(tenant_id, group_id)
        return pb.SettingsReply(
            settings=struct_of(found["effective"]), override=struct_of(found["override"])
        )

    @answers_refusals
    async def GetPoints(self, request: pb.GetPointsRequest, context: Context) -> pb.PointsReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.member_points(
            principal.tenant_id, request.member_id, request.limit or 50, request.before or None
        )
        reply = pb.PointsReply(
            member_id=found["member_id"], balance=found["balance"], next=found["next"] or ""
        )
        for e in found["entries"]:
            entry = reply.entries.add(source=e["source"], points=e["points"], reason=e["reason"])
            entry.at.FromMicroseconds(e["at"])
        return reply

    @answers_refusals
    async def GrantPoints(
        self, request: pb.GrantPointsRequest, context: Context
    ) -> pb.GrantPointsReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        granted = await self.ops.grant(
            principal.tenant_id, request.grant_id, request.member_id, request.points, request.reason
        )
        return pb.GrantPointsReply(**granted)

    @answers_refusals
    async def ListAutoReplies(
        self, request: pb.ListAutoRepliesRequest, context: Context
    ) -> pb.AutoRepliesReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        rules = await self.ops.autoreply_rules(principal.tenant_id)
        return pb.AutoRepliesReply(rules=[struct_of(r) for r in rules])

    @answers_refusals
    async def SaveAutoReply(
        self, request: pb.SaveAutoReplyRequest, context: Context
    ) -> pb.SavedAutoReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        body = json_format.MessageToDict(request.rule)
        if request.rule_id:
            saved = await self.ops.replace_autoreply(principal.tenant_id, request.rule_id, body)
        else:
            saved = await self.ops.create_autoreply(principal.tenant_id, body)
        return pb.SavedAutoReply(
            rule_id=saved["rule_id"], overlaps=[struct_of(o) for o in saved["overlaps"]]
        )

    @answers_refusals
    async def DeleteAutoReply(
        self, request: pb.DeleteAutoReplyRequest, context: Context
    ) -> pb.DeletedAutoReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        await self.ops.delete_autoreply(principal.tenant_id, request.rule_id)
        return pb.DeletedAutoReply()


def service(ops: Operations, auth: Authenticator) -> GrpcService:
    return GrpcService(
        EngagementServicer(ops, auth),
        engagement_pb2_grpc.add_EngagementServiceServicer_to_server,
        pb.DESCRIPTOR.services_by_name["EngagementService"].full_name,
    )
