"""WeCom (企业微信): callback crypto against WeCom's official sample vector, customer-group
callbacks and chat-archive records into events, and the outbound adapter against a local
stand-in of the WeCom server API."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

from services.gen.shequn.v1 import events_pb2
from services.ingestion.wecom_callbacks import Callback, archive_events, group_change_events
from tests.clients import count, dead_lettered
from tests.conftest import Stack, Tenant, create_tenant
from tests.fakes import AES_KEY, CORP_ID, TOKEN, FakeWecom
from tests.ingestion.test_delivery import _action, _finished, act, timeline
from tests.waiting import eventually

DATA = Path(__file__).parent.parent / "data" / "wecom"
# WeCom's published sample (WXBizMsgCrypt, tests/fakes.py): one URL check.
VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO"
    "+FZXvnaqQ==",
}
NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _xml(name: str, chat: str = "CHAT_ID") -> str:
    return (DATA / f"change_external_chat_{name}.xml").read_text().replace("CHAT_ID", chat)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("create", [("group_created", "")]),
        ("dismiss", [("group_dismissed", "")]),
        ("update_add_member", [("member_joined", "Jack"), ("member_joined", "Rose")]),
        (
            "update_del_member",
            [("member_left", "wmEJiCwAAA9KG2qlSq6rKwASSgAAAA"), ("member_left", "zhangsan")],
        ),
        ("update_change_name", [("group_updated", "")]),
    ],
)
def test_group_change_callbacks(name: str, expected: list[tuple[str, str]]) -> None:
    events = group_change_events(Callback(_xml(name)), tenant_id="t", received_at=NOW)
    found = []
    for e in events:
        kind = e.WhichOneof("payload") or ""
        member = getattr(getattr(e, kind), "member", None)
        found.append((kind, member.id if member is not None else ""))
    assert found == expected
    assert all(e.group_id == "CHAT_ID" and e.occurred_at.seconds == 1403610513 for e in events)


def test_join_and_quit_scenes() -> None:
    [qr] = group_change_events(
        Callback(_xml("update_add_member_qrcode")), tenant_id="t", received_at=NOW
    )
    assert qr.member_joined.scene == events_pb2.JOIN_SCENE_QR
    invited = group_change_events(
        Callback(_xml("update_add_member")), tenant_id="t", received_at=NOW
    )
    assert {e.member_joined.scene for e in invited} == {events_pb2.JOIN_SCENE_INVITE}
    removed = group_change_events(
        Callback(_xml("update_del_member")), tenant_id="t", received_at=NOW
    )
    assert {e.member_left.reason for e in removed} == {events_pb2.LEAVE_REASON_KICKED}


def test_group_details_fill_what_the_callback_lacks() -> None:
    callback = Callback(_xml("update_change_name"))
    assert callback.needs_group_details
    [event] = group_change_events(
        callback, tenant_id="t", received_at=NOW, group={"name": "福利群", "owner": "zhangsan"}
    )
    assert event.group_updated.group.name == "福利群"
    assert list(event.group_updated.changes) == [events_pb2.GROUP_CHANGE_NAME]


def test_a_member_who_came_through_a_join_way_joins_through_its_live_code() -> None:
    callback = Callback(_xml("update_add_member_qrcode"))
    assert callback.needs_group_details
    member = "wmxUBwDQAAO-Hn5_wFJz4wvo5TxLFibw"
    details = {"member_list": [{"userid": member, "join_scene": 3, "state": "lc-spring"},
                               {"userid": "other", "join_scene": 3}]}  # fmt: skip
    [event] = group_change_events(callback, tenant_id="t", received_at=NOW, group=details)
    joined = event.member_joined
    assert (joined.scene, joined.livecode) == (events_pb2.JOIN_SCENE_LIVECODE, "lc-spring")
    [plain] = group_change_events(callback, tenant_id="t", received_at=NOW, group=None)
    assert (plain.member_joined.scene, plain.member_joined.livecode) == (
        events_pb2.JOIN_SCENE_QR, ""
    )  # fmt: skip


def test_archive_records() -> None:
    group_text = json.loads((DATA / "archive_group_text.json").read_text())
    recall = json.loads((DATA / "archive_revoke.json").read_text())
    events, errors = archive_events(
        [group_text, recall, {"action": "send", "roomid": "r"}, 7], tenant_id="t", received_at=NOW
    )
    [(index, event)] = events
    assert index == 0
    assert event.event_id == "wecom-archive:2500536226619379798_1576034482"
    assert event.group_id == "wrjc7bDwYAOAhf9quEwRRxyyoMm0QAAA"
    assert event.message_posted.message.text == "@nick 货到了吗？"
    assert event.message_posted.member.id == "wmErxtDgAA9AW32YyyuYRimKr7D1KWlw"
    assert errors == ["records.2: msgid and from are required", "records.3: must be an object"]


def test_the_official_vector_verifies_with_the_library_we_use() -> None:
    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    assert (
        crypto.check_signature(
            VERIFY["msg_signature"], VERIFY["timestamp"], VERIFY["nonce"], VERIFY["echostr"]
        )
        == "1616140317555161061"
    )


def _encrypted(xml: str) -> tuple[dict[str, str], str]:
    sealed = WeChatCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_message(xml, "1372623149", "1409659813")
    parts: dict[str, Any] = xmltodict.parse(sealed)["xml"]
    query = {
        "msg_signature": parts["MsgSignature"],
        "timestamp": parts["TimeStamp"],
        "nonce": parts["Nonce"],
    }
    return query, sealed


async def test_url_verification(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    url = stack.http("ingestion") + f"/v1/webhooks/wecom/{tenant.id}"
    answer = await http.get(url, params=VERIFY)
    assert answer.status_code == 200 and answer.text == "1616140317555161061"
    wrong = await http.get(url, params={**VERIFY, "msg_signature": "0" * 40})
    assert wrong.status_code == 401


async def test_encrypted_callbacks_become_events_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    chat = f"wr{uuid.uuid4().hex}"
    url = stack.http("ingestion") + f"/v1/webhooks/wecom/{tenant.id}"
    query, body = _encrypted(_xml("update_add_member", chat))
    for _ in range(2):  # WeCom repeats a callback it is not sure we got
        answer = await http.post(url, params=query, content=body)
        assert answer.status_code == 200 and answer.text == "success"

    wecom.groups[chat] = {"name": "宝妈交流群", "owner": "zhangsan", "notice": "群规：禁止广告"}
    query, body = _encrypted(_xml("update_change_name", chat))
    assert (await http.post(url, params=query, content=body)).text == "success"

    async def events() -> list[dict[str, Any]]:  # not engagement's welcome template sync
        return [i for i in await timeline(http, stack, tenant, chat) if i["kind"] == "event"]

    items = await eventually(events, lambda i: len(i) >= 3)
    assert [(i["type"], (i.get("member") or {}).get("id"), i["text"]) for i in items] == [
        ("member_joined", "Jack", ""),
        ("member_joined", "Rose", ""),
        ("group_updated", None, "宝妈交流群"),
    ]
    assert all(i["platform"] == "wecom" for i in items)


async def test_a_wrong_signature_is_401_and_stores_nothing(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    chat = f"wr{uuid.uuid4().hex}"
    url = stack.http("ingestion") + f"/v1/webhooks/wecom/{tenant.id}"
    query, body = _encrypted(_xml("update_add_member", chat))
    refused = await http.post(url, params={**query, "msg_signature": "f" * 40}, content=body)
    assert refused.status_code == 401
    other = await create_tenant(stack)
    assert (
        await http.post(
            stack.http("ingestion") + f"/v1/webhooks/wecom/{other.id}", params=query, content=body
        )
    ).status_code == 404
    # A marker delivered correctly afterwards is all the group's timeline holds.
    query, body = _encrypted(_xml("dismiss", chat))
    assert (await http.post(url, params=query, content=body)).text == "success"
    items = await eventually(lambda: timeline(http, stack, tenant, chat), lambda i: len(i) >= 1)
    assert [i["type"] for i in items] == ["group_dismissed"]


async def test_chat_archive_records(stack: Stack, tenant: Tenant, http: httpx.AsyncClient) -> None:
    room = f"wr{uuid.uuid4().hex}"
    record = {
        **json.loads((DATA / "archive_group_text.json").read_text()),
        "roomid": room,
        "msgid": f"m-{uuid.uuid4().hex}",
    }
    url = stack.http("ingestion") + f"/v1/webhooks/wecom/{tenant.id}/archive"
    answer = await http.post(
        url, json={"records": [record, record]}, headers=tenant.headers("operator")
    )
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1, "duplicates": 1, "ignored": 0, "rejected": []}
    other = await create_tenant(stack)
    assert (
        await http.post(url, json={"records": [record]}, headers=other.headers("operator"))
    ).status_code == 403
    items = await eventually(lambda: timeline(http, stack, tenant, room), lambda i: len(i) >= 1)
    assert items[0]["type"] == "message_posted" and items[0]["text"] == "@nick 货到了吗？"


async def test_sending_to_a_customer_group_is_an_owner_confirmed_task(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    chat = f"wr{uuid.uuid4().hex}"
    wecom.groups[chat] = {"name": "福利群", "owner": "zhangsan"}
    wecom.answer("add_msg_template", {"errcode": 42001, "errmsg": "access_token expired"})
    sent = await act(
        http, stack, tenant, type="send_text", platform="wecom", group_id=chat, text="早上好"
    )
    kick = await act(
        http, stack, tenant, type="kick_member", platform="wecom", group_id=chat, member_id="wm1"
    )
    items = await eventually(
        lambda: timeline(http, stack, tenant, chat),
        lambda i: _finished(sent)(i) and _finished(kick)(i),
    )
    delivered = _action(items, sent) or {}
    assert delivered["status"] == "delivered" and "confirms" in delivered["reason"]
    assert (_action(items, kick) or {})["status"] == "unsupported"
    [first, second] = wecom.calls_to("add_msg_template")
    assert first.token != second.token, "an expired token is replaced and the call made again"
    assert second.params == {
        "chat_type": "group",
        "sender": "zhangsan",
        "chat_id_list": [chat],
        "allow_select": False,
        "text": {"content": "早上好"},
    }
    assert all(c.token == "app-secret-1234" for c in wecom.calls_to("gettoken"))


async def test_no_wecom_secret_reaches_a_log_line(stack: Stack) -> None:
    """After the calls above: the app secret and access tokens were sent, never logged."""
    log = (stack.state_dir.parent / f"{stack.state_dir.name}.log").read_text(errors="replace")
    for secret in ("app-secret-1234", AES_KEY, "access_token=token-"):
        assert secret not in log


async def test_archive_records_every_consumer_can_take(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """200 records with 20,001-character texts were accepted and then dead-lettered by every
    consumer (which crash-looped on the limit): now a text longer than an event carries is
    shortened, a long msgid becomes a digest, and what the intake refuses is said per record."""
    room = f"wr{uuid.uuid4().hex}"
    base = json.loads((DATA / "archive_group_text.json").read_text())

    def record(text: str, msgid: str | None = None) -> dict[str, Any]:
        return {
            **base, "roomid": room, "msgid": msgid or f"m-{uuid.uuid4().hex}",
            "text": {"content": text}, "msgtime": int(time.time() * 1000),
        }  # fmt: skip

    long = [record("好" + "x" * 20_000) for _ in range(200)]
    odd_id = record("货到了", "m" * 300)
    future = {**record("来自未来"), "msgtime": int(time.time() * 1000) + 86_400_000}
    before = await dead_lettered(http, stack)
    answer = await http.post(
        stack.http("ingestion") + f"/v1/webhooks/wecom/{tenant.id}/archive",
        json={"records": [*long, odd_id, future]},
        headers=tenant.headers("operator"),
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["ignored"]) == (201, 0, 0)
    assert body["rejected"] == [
        "records.201.occurred_at: more than 600 s after the time it was received; check the"
        " sender's clock"
    ]
    await eventually(lambda: count(http, stack, tenant, room, "messages"), lambda n: n == 201)

    async def recorded() -> list[dict[str, Any]]:
        found, after = [], None
        while True:  # (moderation's answers to the flood are in the same timeline)
            page = await http.get(
                stack.http("ingestion") + f"/v1/groups/{room}/timeline",
                params={"limit": 500, **({"after": after} if after else {})},
                headers=tenant.headers("viewer"),
            )
            found += [i for i in page.json()["items"] if i["kind"] == "event"]
            if not (after := page.json()["next"]):
                return found

    events = await eventually(recorded, lambda e: len(e) >= 201)
    assert len(events) == 201 and {len(i["text"]) for i in events} == {20_000, 3}
    assert max(len(i["event_id"]) for i in events) <= 200
    assert await dead_lettered(http, stack) == before


def test_a_reply_to_what_was_said_is_unsupported_on_wecom_but_a_post_is_a_task() -> None:
    from services.gen.shequn.v1 import actions_pb2
    from services.ingestion.adapters.wecom import IN_REPLY, refusal

    reply = actions_pb2.Action(action_id="a1", cause_event_id="ev-1")
    reply.send_text.text = "签到成功"
    assert refusal(reply) == IN_REPLY and "welcome template" in IN_REPLY
    card = actions_pb2.Action(action_id="a2", cause_event_id="ev-2")
    card.send_link_card.title = "官网"
    assert refusal(card) == IN_REPLY
    post = actions_pb2.Action(action_id="a3")
    post.send_text.text = "早上好"
    assert refusal(post) is None, "a post of the operator's: an owner-confirmed task"
