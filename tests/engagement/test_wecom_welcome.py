"""On WeCom the welcome is the platform's own group welcome template: engagement posts none and
keeps the templates in step with the welcome settings, through ingestion's WeCom adapter (the
stand-in WeCom server API here)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx

from services.gen.shequn.v1 import engagement_pb2 as pb
from services.gen.shequn.v1 import engagement_pb2_grpc
from tests.clients import actions_in, joined, post_events
from tests.conftest import Stack, Tenant
from tests.fakes import FakeWecom
from tests.moderation.test_moderation import grpc_auth, refused
from tests.waiting import eventually, stays

SETTINGS = "/v1/engagement/settings"
TEMPLATES = "/v1/engagement/welcome-templates"


async def _templates(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> list[Any]:
    response = await http.get(stack.http("engagement") + TEMPLATES, headers=tenant.headers())
    assert response.status_code == 200, response.text
    return list(response.json()["templates"])


def _in(group: str, found: list[Any]) -> dict[str, Any]:
    return next((t for t in found if t["group_id"] == group), {})


async def _welcome(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, template: str) -> None:
    body = {"welcome": {"template": template, "hold_seconds": 0, "combine_window_seconds": 0}}
    response = await http.put(
        stack.http("engagement") + SETTINGS, json=body, headers=tenant.headers("admin")
    )
    assert response.status_code == 200, response.text


async def test_wecom_welcomes_are_the_group_welcome_template_kept_in_step(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    named, plain = f"wr{uuid.uuid4().hex}", f"wr{uuid.uuid4().hex}"
    wecom.answer("group_welcome_template/add", {"errcode": 40003, "errmsg": "invalid content"})
    await _welcome(http, stack, tenant, "欢迎 {nickname} 加入{group_name}！")
    created = {"type": "group_created", "platform": "wecom", "group": {"name": "福利群"}}
    await post_events(http, stack, tenant, [
        {**created, "event_id": f"ev-{uuid.uuid4().hex}", "group_id": named},
        joined(named, "wm-1", platform="wecom", member={"id": "wm-1", "name": "小红"}),
    ])  # fmt: skip

    def state_is(group: str, state: str) -> Any:
        return lambda found: _in(group, found).get("state") == state

    failed = await eventually(lambda: _templates(http, stack, tenant), state_is(named, "failed"))
    assert "40003" in _in(named, failed)["reason"]
    # The next occasion tries again; WeCom takes it this time.
    await post_events(http, stack, tenant, [joined(named, "wm-2", platform="wecom")])
    synced = await eventually(lambda: _templates(http, stack, tenant), state_is(named, "synced"))
    assert _in(named, synced) == {
        "scope": "group", "group_id": named, "text": "欢迎 %NICKNAME% 加入福利群！",
        "state": "synced", "template_id": "template-1", "reason": "",
    }  # fmt: skip
    assert wecom.templates == {"template-1": "欢迎 %NICKNAME% 加入福利群！"}

    # A welcome that names no group is the tenant's template: the named group keeps its own,
    # edited, and a group new to it shares the tenant's.
    await _welcome(http, stack, tenant, "欢迎 {nickname}，先看群公告")
    await post_events(http, stack, tenant, [joined(plain, "wm-3", platform="wecom")])

    def both_synced(found: list[Any]) -> bool:
        return all(t["state"] == "synced" for t in found) and len(found) == 2

    found = await eventually(lambda: _templates(http, stack, tenant), both_synced)
    assert [(t["scope"], t["group_id"], t["template_id"]) for t in found] == [
        ("tenant", plain, "template-2"),
        ("group", named, "template-1"),
    ]
    assert wecom.templates == {
        "template-1": "欢迎 %NICKNAME%，先看群公告",
        "template-2": "欢迎 %NICKNAME%，先看群公告",
    }
    [edit] = wecom.calls_to("group_welcome_template/edit")
    assert edit.params == {
        "template_id": "template-1",
        "text": {"content": "欢迎 %NICKNAME%，先看群公告"},
    }

    # In step: more joins call WeCom no more, and engagement posts no welcome of its own.
    calls = len(wecom.calls)
    await post_events(http, stack, tenant, [joined(plain, "wm-4", platform="wecom")])
    await stays(lambda: _calls(wecom), calls, for_seconds=3)
    actions = await actions_in(http, stack, tenant, plain)
    assert [(a["type"], a["status"]) for a in actions] == [("sync_welcome_template", "delivered")]

    # The same a page at a time, over gRPC.
    async with grpc.aio.insecure_channel(stack.grpc("engagement")) as channel:
        stub = engagement_pb2_grpc.EngagementServiceStub(channel)
        viewer = grpc_auth(tenant.viewer)
        first = await stub.ListWelcomeTemplates(
            pb.ListWelcomeTemplatesRequest(limit=1), metadata=viewer
        )
        rest = pb.ListWelcomeTemplatesRequest(limit=1, after=first.next)
        second = await stub.ListWelcomeTemplates(rest, metadata=viewer)
        code, details = await refused(
            stub.ListWelcomeTemplates(pb.ListWelcomeTemplatesRequest(limit=501), metadata=viewer)
        )
    assert [(t.scope, t.template_id) for t in [*first.templates, *second.templates]] == [
        ("tenant", "template-2"),
        ("group", "template-1"),
    ]
    assert second.next == "" and code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("limit:")


async def _calls(wecom: FakeWecom) -> int:
    return len(wecom.calls)
