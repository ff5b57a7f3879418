"""Moderation end to end: events through Kafka into the moderation service, its actions
delivered on the sim platform and visible in the group timeline, decisions in the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from services.devtools.stack import free_port
from services.gen.shequn.v1 import moderation_pb2, moderation_pb2_grpc
from tests.clients import joined, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.fakes import FakePictureHost, serve_fake
from tests.ingestion.test_delivery import timeline
from tests.kafka import event_id_of, produce, read_topic
from tests.moderation.pictures import WECHAT_CARD, data_url, qr_png
from tests.waiting import eventually, stays


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


async def decisions(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, **query: str
) -> list[dict[str, Any]]:
    response = await http.get(
        stack.http("moderation") + "/v1/moderation/decisions",
        params=query,
        headers=tenant.headers("viewer"),
    )
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["decisions"]
    return found


def _actions(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["type"], i.get("status", "")) for i in items if i["kind"] == "action"]


async def test_the_penalty_ladder_across_two_groups_and_the_blacklist(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    first, second, third = _group(), _group(), _group()
    spammer = f"u-{uuid.uuid4().hex[:6]}"
    await post_events(http, stack, tenant, [joined(first, spammer), joined(second, spammer)])
    ad = message(first, spammer, "加 微 信 领福利 vx: shop_8888")
    await post_events(http, stack, tenant, ad)

    items = await eventually(
        lambda: timeline(http, stack, tenant, first),
        lambda i: len([a for a in _actions(i) if a[1] == "delivered"]) == 2,
    )
    assert _actions(items) == [("delete_message", "delivered"), ("send_text", "delivered")]
    warning = next(i for i in items if i["type"] == "send_text")
    assert "请遵守群规" in warning["text"] and "第一次提醒" in warning["text"]
    [decision] = await decisions(http, stack, tenant, member_id=spammer)
    assert (decision["rule"], decision["penalty"], decision["violation_number"]) == (
        "ad",
        "warn",
        1,
    )
    assert decision["evidence"] and decision["span"] is not None
    assert '"check": "wechat_id"' in decision["explanation"]

    # The same message delivered again by Kafka is not a second violation.
    await produce(stack.kafka, await _raw_events(stack, ad["event_id"]))
    await stays(lambda: _count(http, stack, tenant, spammer), 1, for_seconds=3)

    # A second violation, in another group: kicked and blacklisted.
    await post_events(http, stack, tenant, message(second, spammer, "兼职刷单日赚300 私聊"))
    items = await eventually(
        lambda: timeline(http, stack, tenant, second),
        lambda i: any(x["type"] == "member_left" for x in i),
    )
    assert ("kick_member", "delivered") in _actions(items)
    found = await decisions(http, stack, tenant, member_id=spammer)
    assert [d["penalty"] for d in found] == ["kick", "warn"]
    assert found[0]["blacklisted"] is True and found[0]["violation_number"] == 2
    listed = (
        await http.get(stack.http("moderation") + "/v1/blacklist", headers=tenant.headers("viewer"))
    ).json()
    assert spammer in [m["member_id"] for m in listed["members"]]

    # Joining a third group: removed at once.
    await post_events(http, stack, tenant, joined(third, spammer))
    items = await eventually(
        lambda: timeline(http, stack, tenant, third),
        lambda i: any(x["type"] == "member_left" for x in i),
    )
    assert ("kick_member", "delivered") in _actions(items)

    # Unbanned: off the list, the groups told, and joining works again.
    unban = await http.delete(
        stack.http("moderation") + f"/v1/blacklist/{spammer}", headers=tenant.headers("owner")
    )
    assert unban.status_code == 200 and unban.json()["groups_told"] >= 1
    fourth = _group()
    await post_events(http, stack, tenant, joined(fourth, spammer))
    await eventually(lambda: _kinds(http, stack, tenant, fourth), lambda k: k == ["member_joined"])
    await stays(lambda: _kinds(http, stack, tenant, fourth), ["member_joined"], for_seconds=3)


async def _raw_events(stack: Stack, event_id: str) -> list[tuple[str, bytes | None, bytes]]:
    [record] = await read_topic(
        stack.kafka, "shequn.events.v1", 1, lambda m: event_id_of(m.value) == event_id
    )
    return [(record.topic, record.key, record.value)]


async def _count(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, member: str) -> int:
    return len(await decisions(http, stack, tenant, member_id=member))


async def _kinds(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> list[str]:
    return [i["type"] for i in await timeline(http, stack, tenant, group)]


async def test_admins_are_exempt_from_flood_but_members_are_not(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = _group()
    admin, chatty = "u-admin", "u-chatty"
    await post_events(http, stack, tenant, [
        {**joined(group, admin), "member": {"id": admin, "role": "admin"}}, joined(group, chatty),
    ])  # fmt: skip
    burst = [message(group, admin, f"通知{i}") for i in range(7)]
    burst += [message(group, chatty, f"哈哈{i}") for i in range(7)]
    await post_events(http, stack, tenant, burst)
    found = await eventually(
        lambda: decisions(http, stack, tenant, group_id=group), lambda d: len(d) >= 1
    )
    assert {d["member_id"] for d in found} == {chatty}
    assert {d["rule"] for d in found} == {"flood"}


async def test_invite_policy_and_rename_lock(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = _group()
    response = await http.put(
        stack.http("moderation") + f"/v1/rulesets/groups/{group}",
        json={"invite_policy": True, "rename_lock": True},
        headers=tenant.headers("owner"),
    )
    assert response.status_code == 200 and response.json()["effective"]["invite_policy"] is True
    created = {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "group_created",
        "group_id": group,
        "group": {"name": "福利1群", "owner_id": "u-owner"},
    }
    by_member = {"scene": "invite", "inviter": {"id": "u-member", "role": "member"}}
    by_owner = {"scene": "invite", "inviter": {"id": "u-owner", "role": "owner"}}
    await post_events(http, stack, tenant, [
        created,
        {**joined(group, "u-owner"), "member": {"id": "u-owner", "role": "owner"}},
        joined(group, "u-member"),
        {**joined(group, "u-friend"), **by_member},
        {**joined(group, "u-guest"), **by_owner},
    ])  # fmt: skip
    await post_events(http, stack, tenant, {
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "group_updated", "group_id": group,
        "group": {"name": "吃瓜群🍉"}, "actor": {"id": "u-member", "role": "member"},
    })  # fmt: skip
    items = await eventually(
        lambda: timeline(http, stack, tenant, group),
        lambda i: (
            sum(1 for x in i if x["type"] == "group_updated") >= 2
            and any(x["type"] == "member_left" for x in i)
        ),
    )
    kicked = [x["member"]["id"] for x in items if x["type"] == "member_left"]
    assert kicked == ["u-friend"], "only the member a non-admin invited is removed"
    names = [x["text"] for x in items if x["type"] == "group_updated"]
    assert names == ["吃瓜群🍉", "福利1群"], "the rename is undone"
    rules = {d["rule"] for d in await decisions(http, stack, tenant, group_id=group)}
    assert rules == {"invite_policy", "rename_lock"}


async def test_rulesets_are_validated_and_kept_per_tenant(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("moderation") + "/v1/rulesets/default"
    defaults = (await http.get(url, headers=tenant.headers("viewer"))).json()
    assert "傻逼" in defaults["abuse_lexicon"] and defaults["flood"]["max_messages"] == 5
    bad = await http.put(url, json={"flood": {"max_messages": 0}}, headers=tenant.headers("owner"))
    assert bad.status_code == 422 and bad.json()["field"] == "flood.max_messages"
    unknown = await http.put(url, json={"no_such_rule": 1}, headers=tenant.headers("owner"))
    assert unknown.status_code == 422 and unknown.json()["field"] == "no_such_rule"
    assert (await http.put(url, json={}, headers=tenant.headers("operator"))).status_code == 403
    mine = await http.put(url, json={"banned_keywords": ["竞品A"]}, headers=tenant.headers("owner"))
    assert mine.status_code == 200
    other = await create_tenant(stack)
    theirs = (await http.get(url, headers=other.headers("viewer"))).json()
    assert theirs["banned_keywords"] == []
    assert await decisions(http, stack, other) == []


async def test_the_same_text_in_three_groups_is_cross_group_spam(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    groups = [_group() for _ in range(3)]
    spreader = f"u-{uuid.uuid4().hex[:6]}"
    await post_events(http, stack, tenant, [joined(g, spreader) for g in groups])
    text = "新品上市全场五折，快来抢购吧"
    for group in groups:  # one request each, so the count crosses batches
        await post_events(http, stack, tenant, message(group, spreader, text))
    found = await eventually(
        lambda: decisions(http, stack, tenant, member_id=spreader), lambda d: len(d) >= 1
    )
    assert [(d["rule"], d["group_id"]) for d in found] == [("cross_group", groups[2])]


def _picture(group_id: str, member_id: str, url: str) -> dict[str, Any]:
    posted = message(group_id, member_id, "")
    return {**posted, "message": {**posted["message"], "kind": "image", "media_url": url}}


async def test_qr_code_pictures_are_ads_and_pictures_that_cannot_be_fetched_are_not(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group, other_group = _group(), _group()
    card, payer, lost, again = (f"u-{uuid.uuid4().hex[:6]}" for _ in range(4))
    payment = "wxp://f2f0Qz8dGvA3m7k"
    host = FakePictureHost(pictures={"card.png": qr_png(WECHAT_CARD)})
    async with serve_fake(host):
        members = [joined(group, m) for m in (card, payer, lost)] + [joined(other_group, again)]
        await post_events(http, stack, tenant, members)
        gone = f"http://127.0.0.1:{free_port()}/gone.png"  # nothing listens there
        await post_events(http, stack, tenant, _picture(group, lost, gone))
        await post_events(http, stack, tenant, [
            _picture(group, card, f"{host.url}/card.png"),
            _picture(group, payer, data_url(qr_png(payment))),
            _picture(other_group, again, f"{host.url}/card.png"),  # the same picture elsewhere
        ])  # fmt: skip
        items = await eventually(
            lambda: timeline(http, stack, tenant, group),
            lambda i: len([a for a in _actions(i) if a[1] == "delivered"]) == 4,
        )
    assert (
        sorted(_actions(items))
        == [("delete_message", "delivered")] * 2 + [("send_text", "delivered")] * 2
    )
    found = await decisions(http, stack, tenant, group_id=group)
    evidence = {d["member_id"]: (d["rule"], d["check"], d["evidence"]) for d in found}
    assert evidence == {card: ("ad", "qr_code", WECHAT_CARD), payer: ("ad", "qr_code", payment)}
    [elsewhere] = await eventually(
        lambda: decisions(http, stack, tenant, member_id=again), lambda d: len(d) == 1
    )
    assert elsewhere["evidence"] == WECHAT_CARD
    assert host.requests == ["card.png"], "one download for the picture posted in two groups"
    metrics = (await http.get(stack.http("moderation") + "/metrics")).text
    assert 'shequn_moderation_pictures_total{outcome="failed"}' in metrics


def grpc_auth(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


async def refused(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    """The status code and details of a gRPC call that fails."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), str(error.value.details())


async def test_rulesets_and_decisions_over_grpc(stack: Stack, tenant: Tenant) -> None:
    auth = grpc_auth
    group = _group()
    async with grpc.aio.insecure_channel(stack.grpc("moderation")) as channel:
        stub = moderation_pb2_grpc.ModerationServiceStub(channel)
        got = await stub.GetRuleset(
            moderation_pb2.GetRulesetRequest(), metadata=auth(tenant.viewer)
        )
        assert json_format.MessageToDict(got.ruleset)["flood"]["max_messages"] == 5
        override = Struct()
        override.update({"rename_lock": True})
        put = await stub.PutRuleset(
            moderation_pb2.PutRulesetRequest(group_id=group, ruleset=override),
            metadata=auth(tenant.owner),
        )
        assert put.ruleset["rename_lock"] is True and put.override["rename_lock"] is True
        bad = Struct()
        bad.update({"flood": {"max_messages": 0}})
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PutRuleset(
                moderation_pb2.PutRulesetRequest(ruleset=bad), metadata=auth(tenant.owner)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert str(refused.value.details()).startswith("flood.max_messages")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PutRuleset(
                moderation_pb2.PutRulesetRequest(ruleset=bad), metadata=auth(tenant.viewer)
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        listed = await stub.ListDecisions(
            moderation_pb2.ListDecisionsRequest(), metadata=auth(tenant.viewer)
        )
        assert list(listed.decisions) == []


async def test_blacklist_and_appeals_over_grpc(stack: Stack, tenant: Tenant) -> None:
    owner, viewer = grpc_auth(tenant.owner), grpc_auth(tenant.viewer)
    async with grpc.aio.insecure_channel(stack.grpc("moderation")) as channel:
        stub = moderation_pb2_grpc.ModerationServiceStub(channel)
        add = moderation_pb2.AddToBlacklistRequest(member_id="u-9", reason="广告号")
        entry = (await stub.AddToBlacklist(add, metadata=owner)).entry
        assert entry["reason"] == "广告号" and entry["active"] is True
        listed = await stub.ListBlacklist(moderation_pb2.ListBlacklistRequest(), metadata=viewer)
        assert [m["member_id"] for m in listed.members] == ["u-9"]
        bad = moderation_pb2.AddToBlacklistRequest(member_id="u 9")
        code, details = await refused(stub.AddToBlacklist(bad, metadata=owner))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("member_id:")
        code, _ = await refused(stub.AddToBlacklist(add, metadata=viewer))
        assert code == grpc.StatusCode.PERMISSION_DENIED

        unban = moderation_pb2.UnbanRequest(member_id="u-9")
        assert (await stub.Unban(unban, metadata=owner)).member_id == "u-9"
        listed = await stub.ListBlacklist(moderation_pb2.ListBlacklistRequest(), metadata=viewer)
        assert list(listed.members) == []
        # A retry is answered again; a member never blacklisted is not found.
        assert (await stub.Unban(unban, metadata=owner)).member_id == "u-9"
        never = moderation_pb2.UnbanRequest(member_id="u-never")
        code, _ = await refused(stub.Unban(never, metadata=owner))
        assert code == grpc.StatusCode.NOT_FOUND

        appeal = moderation_pb2.AppealDecisionRequest(decision_id="ev-x:ad", reason="误判")
        code, _ = await refused(stub.AppealDecision(appeal, metadata=grpc_auth(tenant.operator)))
        assert code == grpc.StatusCode.NOT_FOUND
        appeal.reason = " "
        code, details = await refused(stub.AppealDecision(appeal, metadata=owner))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("reason:")
