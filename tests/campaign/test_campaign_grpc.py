"""`shequn.v1.CampaignService`: the coupons of the HTTP API, with gRPC's status codes for what
is refused."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from services.gen.shequn.v1 import campaign_pb2 as pb
from services.gen.shequn.v1 import campaign_pb2_grpc
from services.runtime.rpc import struct_of
from tests.conftest import Stack, Tenant, create_tenant
from tests.moderation.test_moderation import grpc_auth, refused


async def test_coupons_over_grpc(stack: Stack, tenant: Tenant) -> None:
    admin, operator = grpc_auth(tenant.admin), grpc_auth(tenant.operator)
    async with grpc.aio.insecure_channel(stack.grpc("campaign")) as channel:
        stub = campaign_pb2_grpc.CampaignServiceStub(channel)
        made = await stub.CreateCoupon(
            pb.CreateCouponRequest(name="满100减10", value=10, stock=1), metadata=admin
        )
        give = pb.IssueCouponRequest(coupon_id=made.coupon_id, member_id="u-1", issue_id="r-1")
        first = await stub.IssueCoupon(give, metadata=operator)
        assert (await stub.IssueCoupon(give, metadata=operator)).code == first.code
        more = pb.IssueCouponRequest(coupon_id=made.coupon_id, member_id="u-2")
        code, details = await refused(stub.IssueCoupon(more, metadata=operator))
        assert (code, details) == (grpc.StatusCode.FAILED_PRECONDITION, "sold_out")
        read = await stub.GetCoupon(pb.GetCouponRequest(coupon_id=made.coupon_id), metadata=admin)
        assert (read.stock, read.issued, read.remaining, read.valid_days) == (1, 1, 0, 30)

        too_many = pb.CreateCouponRequest(name="券", value=1, stock=10_001)
        code, details = await refused(stub.CreateCoupon(too_many, metadata=admin))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("stock:")
        code, _ = await refused(stub.CreateCoupon(too_many, metadata=operator))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        theirs = grpc_auth((await create_tenant(stack)).viewer)
        lookup = pb.GetCouponRequest(coupon_id=made.coupon_id)
        code, _ = await refused(stub.GetCoupon(lookup, metadata=theirs))
        assert code == grpc.StatusCode.NOT_FOUND


async def test_live_codes_over_grpc(stack: Stack, tenant: Tenant) -> None:
    operator, viewer = grpc_auth(tenant.operator), grpc_auth(tenant.viewer)
    code = f"lc-{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(stack.grpc("campaign")) as channel:
        stub = campaign_pb2_grpc.CampaignServiceStub(channel)
        ask = pb.CreateLiveCodeRequest(code=code, groups=["g-1", "g-2"], channel="store-A")
        made = await stub.CreateLiveCode(ask, metadata=operator)
        assert (made.capacity, made.free, [g.group_id for g in made.groups]) == (
            200, 400, ["g-1", "g-2"],
        )  # fmt: skip
        read = await stub.GetLiveCode(pb.GetLiveCodeRequest(code=code), metadata=viewer)
        assert read == made
        code_, details = await refused(stub.CreateLiveCode(ask, metadata=operator))
        assert code_ == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("code:")
        empty = pb.CreateLiveCodeRequest(code=f"{code}-2")
        code_, details = await refused(stub.CreateLiveCode(empty, metadata=operator))
        assert code_ == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("groups:")


async def test_broadcasts_over_grpc(stack: Stack, tenant: Tenant) -> None:
    operator, viewer = grpc_auth(tenant.operator), grpc_auth(tenant.viewer)
    async with grpc.aio.insecure_channel(stack.grpc("campaign")) as channel:
        stub = campaign_pb2_grpc.CampaignServiceStub(channel)
        ask = pb.BroadcastRequest(client_id="c-1", text="早安", groups=["g-never"])
        sent = await stub.Broadcast(ask, metadata=operator)
        assert [(s.group_id, s.reason) for s in sent.skipped] == [
            ("g-never", "no event of this group has been seen")
        ]
        assert (await stub.Broadcast(ask, metadata=operator)).broadcast_id == sent.broadcast_id
        read = await stub.GetBroadcast(
            pb.GetBroadcastRequest(broadcast_id=sent.broadcast_id), metadata=viewer
        )
        assert dict(read.counts)["pending"] == 0 and len(read.skipped) == 1
        neither = pb.BroadcastRequest(text="早安")
        code, _ = await refused(stub.Broadcast(neither, metadata=operator))
        assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_sop_schedules_over_grpc(stack: Stack, tenant: Tenant) -> None:
    operator, viewer = grpc_auth(tenant.operator), grpc_auth(tenant.viewer)
    schedule = Struct()
    schedule.update({"name": "早安", "cron": "30 7 * * *", "groups": ["g-1"], "text": "早上好"})
    async with grpc.aio.insecure_channel(stack.grpc("campaign")) as channel:
        stub = campaign_pb2_grpc.CampaignServiceStub(channel)
        made = await stub.CreateSchedule(
            pb.CreateScheduleRequest(schedule=schedule), metadata=operator
        )
        fields = json_format.MessageToDict(made.schedule)
        assert (fields["cron"], fields["groups"]) == ("30 7 * * *", ["g-1"])
        assert "T23:30:00" in fields["next_slot"]  # 07:30 in Shanghai
        read = await stub.GetSchedule(
            pb.GetScheduleRequest(schedule_id=made.schedule_id), metadata=viewer
        )
        assert read == made
        runs = await stub.ListScheduleRuns(
            pb.ListScheduleRunsRequest(schedule_id=made.schedule_id), metadata=viewer
        )
        assert list(runs.runs) == []
        wrong = Struct()
        wrong.update({"name": "x", "cron": "every day", "groups": ["g-1"], "text": "x"})
        code, details = await refused(
            stub.CreateSchedule(pb.CreateScheduleRequest(schedule=wrong), metadata=operator)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("cron:")


def _struct(value: dict[str, Any]) -> Struct:
    return struct_of(value)


async def test_fission_activity_handover_notices_and_tiers_over_grpc(
    stack: Stack, tenant: Tenant
) -> None:
    """The operations that answer the HTTP API's JSON as Structs: made, read, refused."""
    admin, viewer = grpc_auth(tenant.admin), grpc_auth(tenant.viewer)
    code = f"lc-{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(stack.grpc("campaign")) as channel:
        stub = campaign_pb2_grpc.CampaignServiceStub(channel)
        await stub.CreateLiveCode(pb.CreateLiveCodeRequest(code=code, groups=["g-1"]),
                                  metadata=admin)  # fmt: skip
        task = {"name": "邀请", "goal": 2, "livecode": code, "reward": {"points": 5}}
        made = await stub.CreateFissionTask(pb.Body(body=_struct(task)), metadata=admin)
        task_id = str(made.record["task_id"])
        asked = pb.Body(id=task_id, body=_struct({"member_id": "u-1"}))
        invite = await stub.IssueInviteCode(asked, metadata=admin)
        assert (await stub.IssueInviteCode(asked, metadata=admin)).record == invite.record
        funnel = await stub.GetFissionFunnel(pb.Body(id=task_id), metadata=viewer)
        assert json_format.MessageToDict(funnel.record)["codes_issued"] == 1
        page = await stub.ListInviters(pb.Page(id=task_id), metadata=viewer)
        assert (list(page.items), page.next) == ([], "")
        tasks = await stub.ListFissionTasks(pb.Page(limit=10), metadata=viewer)
        assert [t["task_id"] for t in tasks.items] == [task_id]
        codes = await stub.ListLiveCodes(pb.Page(), metadata=viewer)
        assert [c["code"] for c in codes.items] == [code]
        bad = pb.Body(body=_struct({**task, "goal": 0}))
        code_, details = await refused(stub.CreateFissionTask(bad, metadata=admin))
        assert code_ == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("goal:")
        code_, _ = await refused(stub.GetFissionTask(pb.Body(id="f-none"), metadata=viewer))
        assert code_ == grpc.StatusCode.NOT_FOUND

        never = pb.Body(id="g-never", body=_struct({"ends_on": "2030-01-01"}))
        code_, details = await refused(stub.SetActivityGroup(never, metadata=admin))
        assert code_ == grpc.StatusCode.NOT_FOUND and details.startswith("group_id:")
        handover = pb.Body(body=_struct({"from_owner": "s-none", "to_owner": "s-2"}))
        code_, details = await refused(stub.StartHandover(handover, metadata=admin))
        assert code_ == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("from_owner:")
        code_, _ = await refused(stub.StartHandover(handover, metadata=viewer))
        assert code_ == grpc.StatusCode.PERMISSION_DENIED

        notice = pb.Body(id="spring", body=_struct({"text": "群规"}))
        assert (await stub.PutNotice(notice, metadata=admin)).record["text"] == "群规"
        drift = await stub.ListNoticeDrift(pb.Page(), metadata=viewer)
        assert list(drift.items) == []
        ladder = {"rungs": [{"tag": "鱼塘群", "livecode": code}]}
        await stub.PutTierLadder(pb.Body(body=_struct(ladder)), metadata=admin)
        read = await stub.GetTierLadder(pb.Body(), metadata=viewer)
        assert json_format.MessageToDict(read.record)["rungs"][0]["livecode"] == code
