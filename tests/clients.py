"""Small clients for the public APIs, shared by the tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Stack, Tenant

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX"
SECRET = "s3cr3t-token"


async def put_telegram(
    http: httpx.AsyncClient, ingestion: str, headers: dict[str, str], api_base_url: str = ""
) -> None:
    """Give the tenant a Telegram bot (its Bot API at `api_base_url`, a stand-in, if given)."""
    body = {"bot_token": BOT_TOKEN, "secret_token": SECRET}
    if api_base_url:
        body["api_base_url"] = api_base_url
    response = await http.put(f"{ingestion}/v1/platforms/telegram", json=body, headers=headers)
    assert response.status_code == 200, response.text


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
    """A group's statistics of the last week added up (test events happen now, and "now" may
    have just become tomorrow in the tenant's time zone)."""
    response = await http.get(
        stack.http("analytics") + f"/v1/stats/groups/{group_id}/daily",
        headers=tenant.headers(role),
    )
    response.raise_for_status()
    days = response.json()["days"]
    return {name: sum(d[name] for d in days) for name in days[-1] if name != "date"}


async def group_days(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group_id: str, start: str, end: str
) -> dict[str, dict[str, Any]]:
    """A group's statistics from `start` to `end` (YYYY-MM-DD), by day."""
    response = await http.get(
        stack.http("analytics") + f"/v1/stats/groups/{group_id}/daily",
        params={"from": start, "to": end},
        headers=tenant.headers("viewer"),
    )
    response.raise_for_status()
    return {day["date"]: day for day in response.json()["days"]}


async def count(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group_id: str, name: str
) -> int:
    return int((await group_day(http, stack, tenant, group_id))[name])


async def dead_lettered(http: httpx.AsyncClient, stack: Stack) -> dict[str, float]:
    """Messages every consumer of the stack has dead-lettered so far, by consumer."""
    found: dict[str, float] = {}
    for service in stack.info["services"]:
        exported = (await http.get(stack.http(service) + "/metrics")).text
        for line in exported.splitlines():
            if line.startswith("shequn_dead_lettered_total{"):
                consumer = line.split('consumer="', 1)[1].split('"', 1)[0]
                found[consumer] = found.get(consumer, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


async def actions_in(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str, source: str = "engagement"
) -> list[dict[str, Any]]:
    """The actions of `source` in a group's timeline, oldest first."""
    response = await http.get(
        stack.http("ingestion") + f"/v1/groups/{group}/timeline", headers=tenant.headers("viewer")
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    return [i for i in items if i["kind"] == "action" and i.get("source_service") == source]


async def ready(url: str) -> bool:
    """Whether the service at `url` answers /readyz with 200 (Kafka, MongoDB, its consumers)."""
    async with httpx.AsyncClient() as http:
        try:
            return (await http.get(f"{url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False
