"""Small clients for the public APIs, shared by the tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Stack, Tenant


def message(
    group_id: str, member_id: str = "u-1", text: str = "大家好", **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "message_posted",
        "group_id": group_id,
        "member": {"id": member_id, "name": "小明"},
        "message": {"id": f"m-{uuid.uuid4().hex[:8]}", "kind": "text", "text": text},
        **extra,
    }


def joined(group_id: str, member_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "member_joined",
        "group_id": group_id,
        "member": {"id": member_id},
        "scene": "qr",
        **extra,
    }


async def post_events(
    http: httpx.AsyncClient,
    stack: Stack,
    tenant: Tenant,
    events: list[dict[str, Any]] | dict[str, Any],
    role: str = "operator",
) -> httpx.Response:
    body = {"events": events} if isinstance(events, list) else events
    return await http.post(
        stack.http("ingestion") + "/v1/events", json=body, headers=tenant.headers(role)
    )


async def group_day(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group_id: str, role: str = "viewer"
) -> dict[str, Any]:
    """Today's row of a group's daily statistics (all test events happen now)."""
    response = await http.get(
        stack.http("analytics") + f"/v1/stats/groups/{group_id}/daily",
        headers=tenant.headers(role),
    )
    response.raise_for_status()
    row: dict[str, Any] = response.json()["days"][-1]
    return row


async def count(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group_id: str, name: str
) -> int:
    return int((await group_day(http, stack, tenant, group_id))[name])
