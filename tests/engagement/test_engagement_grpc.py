"""`shequn.v1.EngagementService`: the settings and points of the HTTP API, with gRPC's status
codes for what is refused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import httpx
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from services.gen.shequn.v1 import engagement_pb2 as pb
from services.gen.shequn.v1 import engagement_pb2_grpc
from tests.clients import post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.moderation.test_moderation import grpc_auth, refused


def _struct(value: dict[str, Any]) -> Struct:
    found = Struct()
    found.update(value)
    return found


async def test_settings_and_points_over_grpc(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    member, group = f"u-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    admin, viewer = grpc_auth(tenant.admin), grpc_auth(tenant.viewer)
    async with grpc.aio.insecure_channel(stack.grpc("engagement")) as channel:
        stub = engagement_pb2_grpc.EngagementServiceStub(channel)
        put = await stub.PutSettings(
            pb.PutSettingsRequest(settings=_struct({"checkin": {"points": 3}})), metadata=admin
        )
        assert json_format.MessageToDict(put.settings)["checkin"]["points"] == 3
        override = pb.PutSettingsRequest(group_id=group, settings=_struct({"timezone": "UTC"}))
        in_group = await stub.PutSettings(override, metadata=admin)
        assert json_format.MessageToDict(in_group.override) == {"timezone": "UTC"}
        read = await stub.GetSettings(pb.GetSettingsRequest(group_id=group), metadata=viewer)
        effective = json_format.MessageToDict(read.settings)
        assert effective["timezone"] == "UTC" and effective["checkin"]["points"] == 3

        give = pb.GrantPointsRequest(grant_id="g1", member_id=member, points=80, reason="活动")
        assert (await stub.GrantPoints(give, metadata=admin)).balance == 80
        assert (await stub.GrantPoints(give, metadata=admin)).balance == 80, "once per grant_id"
        points = await stub.GetPoints(pb.GetPointsRequest(member_id=member), metadata=viewer)
        assert (points.balance, [e.source for e in points.entries]) == (80, ["grant:g1"])
        assert points.entries[0].at.seconds > 0 and points.next == ""

        over = pb.GrantPointsRequest(grant_id="g2", member_id=member, points=-81)
        code, details = await refused(stub.GrantPoints(over, metadata=admin))
        assert (code, details) == (grpc.StatusCode.FAILED_PRECONDITION, "insufficient_points")
        bad = pb.GrantPointsRequest(grant_id="g3", member_id="a:b", points=1)
        code, details = await refused(stub.GrantPoints(bad, metadata=admin))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("member_id:")
        wrong = pb.PutSettingsRequest(settings=_struct({"timezone": "Nowhere/Else"}))
        code, details = await refused(stub.PutSettings(wrong, metadata=admin))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("timezone:")
        code, _ = await refused(stub.GrantPoints(give, metadata=viewer))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        code, _ = await refused(stub.GetPoints(pb.GetPointsRequest(member_id=member)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        other = grpc_auth((await create_tenant(stack)).viewer)
        theirs = await stub.GetPoints(pb.GetPointsRequest(member_id=member), metadata=other)
        assert (theirs.balance, len(theirs.entries)) == (0, 0)

    over_http = await http.get(
        stack.http("engagement") + f"/v1/members/{member}/points", headers=tenant.headers("viewer")
    )
    assert over_http.json()["balance"] == 80


async def test_auto_replies_over_grpc(stack: Stack, tenant: Tenant) -> None:
    admin, viewer = grpc_auth(tenant.admin), grpc_auth(tenant.viewer)
    rule = {"keywords": ["价格"], "cooldown_seconds": 30, "reply": {"text": "见群公告"}}
    async with grpc.aio.insecure_channel(stack.grpc("engagement")) as channel:
        stub = engagement_pb2_grpc.EngagementServiceStub(channel)
        saved = await stub.SaveAutoReply(
            pb.SaveAutoReplyRequest(rule=_struct(rule)), metadata=admin
        )
        wider = {**rule, "keywords": ["价格表"]}
        second = await stub.SaveAutoReply(
            pb.SaveAutoReplyRequest(rule=_struct(wider)), metadata=admin
        )
        assert [json_format.MessageToDict(o) for o in second.overlaps] == [
            {"rule_id": saved.rule_id, "keywords": ["价格表"]}
        ]
        listed = await stub.ListAutoReplies(pb.ListAutoRepliesRequest(), metadata=viewer)
        found = [json_format.MessageToDict(r) for r in listed.rules]
        assert [r["rule_id"] for r in found] == [saved.rule_id, second.rule_id]
        assert found[0]["cooldown_seconds"] == 30
        bad = pb.SaveAutoReplyRequest(rule=_struct({**rule, "match": "regex"}))
        code, details = await refused(stub.SaveAutoReply(bad, metadata=admin))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("match:")
        gone = pb.DeleteAutoReplyRequest(rule_id=saved.rule_id)
        await stub.DeleteAutoReply(gone, metadata=admin)
        code, _ = await refused(stub.DeleteAutoReply(gone, metadata=admin))
        assert code == grpc.StatusCode.NOT_FOUND
        other = grpc_auth((await create_tenant(stack)).admin)
        code, _ = await refused(
            stub.DeleteAutoReply(pb.DeleteAutoReplyRequest(rule_id=second.rule_id), metadata=other)
        )
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = await refused(stub.SaveAutoReply(bad, metadata=viewer))
        assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_lotteries_questions_segments_and_red_packets_over_grpc(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    admin, operator = grpc_auth(tenant.admin), grpc_auth(tenant.operator)
    viewer, member = grpc_auth(tenant.viewer), f"u-{uuid.uuid4().hex[:6]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    created = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group}
    await post_events(http, stack, tenant, [created])
    async with grpc.aio.insecure_channel(stack.grpc("engagement")) as channel:
        stub = engagement_pb2_grpc.EngagementServiceStub(channel)
        pool = {"name": "周年庆", "cost": 40, "prizes": [{"name": "杯子", "weight": 1, "stock": 1}]}
        made = await stub.CreateLottery(
            pb.CreateLotteryRequest(lottery=_struct(pool)), metadata=admin
        )
        await stub.GrantPoints(
            pb.GrantPointsRequest(grant_id="seed", member_id=member, points=100), metadata=admin
        )
        draw = pb.DrawRequest(lottery_id=made.lottery_id, member_id=member, draw_id="d1")
        drawn = await stub.Draw(draw, metadata=operator)
        assert (drawn.prize, drawn.balance) == ("杯子", 60)
        assert (await stub.Draw(draw, metadata=operator)) == drawn, "the same draw_id"
        code, details = await refused(
            stub.Draw(
                pb.DrawRequest(lottery_id=made.lottery_id, member_id=member), metadata=operator
            )
        )
        assert (code, details) == (grpc.StatusCode.FAILED_PRECONDITION, "sold_out")
        got = await stub.GetLottery(
            pb.GetLotteryRequest(lottery_id=made.lottery_id), metadata=viewer
        )
        assert json_format.MessageToDict(got.lottery)["prizes"][0]["remaining"] == 0

        poll = {
            "group_id": group,
            "question": "?",
            "options": ["a", "b"],
            "closes_at": "2099-01-01T00:00:00Z",
        }
        ask = pb.AskQuestionRequest(kind="poll", question=_struct(poll))
        asked = await _eventually_found(lambda: stub.AskQuestion(ask, metadata=operator))
        read = await stub.GetQuestion(
            pb.GetQuestionRequest(kind="poll", question_id=asked.question_id), metadata=viewer
        )
        assert json_format.MessageToDict(read.question)["state"] == "open"
        code, _ = await refused(
            stub.AskQuestion(pb.AskQuestionRequest(kind="vote"), metadata=operator)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        split = await stub.GetSegments(pb.GetSegmentsRequest(group_id=group), metadata=viewer)
        assert (split.koc, split.interactive, split.silent) == (0, 0, 0)
        pay = pb.PayRedPacketRequest(
            payout_id="p1", kind="birthday", member_id=member, group_id=group
        )
        paid = await stub.PayRedPacket(pay, metadata=operator)
        assert json_format.MessageToDict(paid.red_packet)["state"] == "paid"
        code, _ = await refused(
            stub.DecideRedPacket(pb.DecideRedPacketRequest(payout_id="p1"), metadata=operator)
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED


async def _eventually_found(call: Any) -> Any:
    """A call about a group engagement has yet to see: NOT_FOUND until its first event lands."""
    for _ in range(100):
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.2)
    raise AssertionError("the group never became known")
