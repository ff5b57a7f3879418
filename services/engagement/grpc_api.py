"""gRPC: `shequn.v1.EngagementService`, the same operations as the HTTP API."""

from __future__ import annotations

from google.protobuf import json_format

from services.engagement.operations import Operations
from services.gen.shequn.v1 import engagement_pb2 as pb
from services.gen.shequn.v1 import engagement_pb2_grpc
from services.runtime.auth import Authenticator, Role
from services.runtime.refusals import Invalid
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
    async def ListWelcomeTemplates(
        self, request: pb.ListWelcomeTemplatesRequest, context: Context
    ) -> pb.WelcomeTemplatesReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.welcome_templates(
            principal.tenant_id, request.limit or 100, request.after or None
        )
        return pb.WelcomeTemplatesReply(
            templates=[pb.WelcomeTemplate(**t) for t in found["templates"]],
            next=found["next"] or "",
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

    @answers_refusals
    async def CreateLottery(
        self, request: pb.CreateLotteryRequest, context: Context
    ) -> pb.LotteryReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        body = json_format.MessageToDict(request.lottery)
        created = await self.ops.create_lottery(principal.tenant_id, body)
        return await self._lottery(principal.tenant_id, created["lottery_id"])

    @answers_refusals
    async def GetLottery(self, request: pb.GetLotteryRequest, context: Context) -> pb.LotteryReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        return await self._lottery(principal.tenant_id, request.lottery_id)

    async def _lottery(self, tenant_id: str, lottery_id: str) -> pb.LotteryReply:
        found = await self.ops.lottery(tenant_id, lottery_id)
        return pb.LotteryReply(lottery_id=lottery_id, lottery=struct_of(found))

    @answers_refusals
    async def Draw(self, request: pb.DrawRequest, context: Context) -> pb.DrawReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        drawn = await self.ops.draw(
            principal.tenant_id, request.lottery_id, request.member_id, request.draw_id or None
        )
        prize = (drawn["prize"] or {}).get("name", "")
        return pb.DrawReply(draw_id=drawn["draw_id"], prize=prize, balance=drawn["balance"])

    @answers_refusals
    async def AskQuestion(
        self, request: pb.AskQuestionRequest, context: Context
    ) -> pb.AskQuestionReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        kind = _kind(request.kind)
        body = json_format.MessageToDict(request.question)
        asked = await self.ops.ask(principal.tenant_id, kind, body)
        return pb.AskQuestionReply(question_id=asked[f"{kind}_id"])

    @answers_refusals
    async def GetQuestion(
        self, request: pb.GetQuestionRequest, context: Context
    ) -> pb.QuestionReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.question(
            principal.tenant_id, _kind(request.kind), request.question_id
        )
        return pb.QuestionReply(question=struct_of(found))

    @answers_refusals
    async def GetSegments(
        self, request: pb.GetSegmentsRequest, context: Context
    ) -> pb.SegmentsReply:
        principal = await authenticate(context, self.auth, Role.VIEWER)
        found = await self.ops.segments(principal.tenant_id, request.group_id, request.date or None)
        return pb.SegmentsReply(**found)

    @answers_refusals
    async def PayRedPacket(
        self, request: pb.PayRedPacketRequest, context: Context
    ) -> pb.RedPacketReply:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        paid = await self.ops.red_packet(
            principal.tenant_id,
            request.payout_id,
            request.kind,
            request.member_id,
            request.group_id,
        )
        return pb.RedPacketReply(red_packet=struct_of(paid))

    @answers_refusals
    async def DecideRedPacket(
        self, request: pb.DecideRedPacketRequest, context: Context
    ) -> pb.RedPacketReply:
        principal = await authenticate(context, self.auth, Role.ADMIN)
        decided = await self.ops.decide_red_packet(
            principal.tenant_id, request.payout_id, request.approve
        )
        return pb.RedPacketReply(red_packet=struct_of(decided))


def _kind(kind: str) -> str:
    if kind not in ("quiz", "poll"):
        raise Invalid("kind", "quiz or poll")
    return kind


def service(ops: Operations, auth: Authenticator) -> GrpcService:
    return GrpcService(
        EngagementServicer(ops, auth),
        engagement_pb2_grpc.add_EngagementServiceServicer_to_server,
        pb.DESCRIPTOR.services_by_name["EngagementService"].full_name,
    )
