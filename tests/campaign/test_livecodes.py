"""Group live codes (API.md "Group live codes"): scans fill a pool's groups in order and never
beyond their capacity, however many scan at once; joins and leaves from the events topic keep
the places true; reservations not joined in time give theirs back; the public scan is limited
per client address; a pool running low is said on the events topic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from services.campaign.groups import Groups
from services.campaign.joinways import JoinWays
from services.campaign.livecode import LiveCode
from services.campaign.livecodes import LiveCodes
from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.bus import Producer
from services.runtime.envelope import new_event
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.clients import joined, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.ingestion.test_delivery import timeline
from tests.waiting import eventually, stays


async def _code(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, groups: list[str], capacity: int
) -> str:
    code = f"lc-{uuid.uuid4().hex[:8]}"
    body = {"code": code, "groups": groups, "capacity": capacity, "channel": "store-A"}
    made = await http.post(
        stack.http("campaign") + "/v1/livecodes", json=body, headers=tenant.headers("operator")
    )
    assert made.status_code == 201, made.text
    return code


async def _scan(http: httpx.AsyncClient, stack: Stack, code: str, client: str) -> httpx.Response:
    url = stack.http("campaign") + f"/v1/livecodes/{code}/scan"
    return await http.post(url, json={}, headers={"x-forwarded-for": client})


async def _groups(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, code: str) -> Any:
    url = stack.http("campaign") + f"/v1/livecodes/{code}"
    return (await http.get(url, headers=tenant.headers())).json()["groups"]


async def test_a_thousand_concurrent_scans_never_fill_a_group_beyond_its_capacity(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    groups = [f"g-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    code = await _code(http, stack, tenant, groups, capacity=200)
    answers = await asyncio.gather(
        *(_scan(http, stack, code, f"10.0.{i // 250}.{i % 250}") for i in range(1000))
    )
    given = [a.json()["group_id"] for a in answers if a.status_code == 200]
    assert [given.count(g) for g in groups] == [200, 200, 200]
    assert [a.json() for a in answers if a.status_code != 200] == [{"error": "full"}] * 400
    tokens = {a.json()["join_token"] for a in answers if a.status_code == 200}
    assert len(tokens) == 600
    found = await _groups(http, stack, tenant, code)
    assert [(g["reserved"], g["free"]) for g in found] == [(200, 0)] * 3


async def test_joins_and_leaves_keep_the_places_true(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    code = await _code(http, stack, tenant, [group], capacity=5)
    token = (await _scan(http, stack, code, "10.1.0.1")).json()["join_token"]
    via_code = joined(group, "u-1", scene="livecode", livecode=code, join_token=token)
    walked_in = joined(group, "u-2")
    await post_events(http, stack, tenant, [via_code, walked_in])

    def counts(found: Any) -> tuple[int, int, int]:
        return found[0]["members"], found[0]["reserved"], found[0]["free"]

    await eventually(lambda: _groups(http, stack, tenant, code), lambda f: counts(f) == (2, 0, 3))
    left = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "member_left", "group_id": group,
            "member": {"id": "u-2"}}  # fmt: skip
    again = {**via_code, "event_id": f"ev-{uuid.uuid4().hex}"}  # the same join, reported twice
    await post_events(http, stack, tenant, [left, again])
    await eventually(lambda: _groups(http, stack, tenant, code), lambda f: counts(f) == (1, 0, 4))
    await stays(lambda: _counts(http, stack, tenant, code), (1, 0, 4), for_seconds=2)


async def _counts(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, code: str) -> Any:
    g = (await _groups(http, stack, tenant, code))[0]
    return g["members"], g["reserved"], g["free"]


async def test_a_reservation_not_joined_in_time_gives_its_place_back(stack: Stack) -> None:
    settings = Settings(
        kafka_bootstrap=stack.kafka, topic_events=f"test-{uuid.uuid4().hex[:8]}.events",
        livecode_reservation_minutes=0.01,
    )  # fmt: skip
    store = Store(stack.mongo, f"shequn_test_livecodes_{uuid.uuid4().hex[:8]}")
    producer = Producer(settings)
    await producer.start()
    codes = LiveCodes(store, producer, settings, JoinWays(store, producer, settings, Groups(store)))
    try:
        code = f"lc-{uuid.uuid4().hex[:8]}"
        await codes.create("t-1", LiveCode(code=code, groups=["g-1"], capacity=2))
        first = await codes.scan(code, "")
        await codes.scan(code, "")
        await codes.follow([_joined("g-1", "u-1", code, first.join_token)])
        await asyncio.sleep(1)  # past the hold
        await codes.expire()
        found = (await codes.get("t-1", code))["groups"][0]
    finally:
        await producer.stop()
        await store.client.drop_database(store.db.name)
        await store.close()
    assert (found["members"], found["reserved"], found["free"]) == (1, 0, 1)


def _joined(group: str, member: str, code: str, token: str) -> events_pb2.Event:
    now = datetime.now(UTC)
    event = new_event(f"ev-{uuid.uuid4().hex}", "t-1", group, common_pb2.PLATFORM_SIM, now, now)
    event.member_joined.member.id = member
    event.member_joined.livecode, event.member_joined.join_token = code, token
    return event


async def test_the_public_scan_is_limited_per_address_and_tells_nothing_of_other_tenants(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    code = await _code(http, stack, tenant, [group], capacity=1000)
    answers = [await _scan(http, stack, code, "10.2.0.1") for _ in range(25)]
    assert [a.status_code for a in answers[:20]] == [200] * 20
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    assert "address" in limited[0].json()["error"]
    assert set(answers[0].json()) == {"group_id", "join_token"}
    assert (await _scan(http, stack, "lc-none", "10.2.0.2")).status_code == 404

    other = await create_tenant(stack)
    body = {"code": code, "groups": ["g-x"]}
    taken = await http.post(
        stack.http("campaign") + "/v1/livecodes", json=body, headers=other.headers("operator")
    )
    assert taken.status_code == 409 and taken.json()["field"] == "code"
    theirs = await http.get(
        stack.http("campaign") + f"/v1/livecodes/{code}", headers=other.headers()
    )
    assert theirs.status_code == 404


async def test_a_pool_running_low_is_said_once_on_the_events_topic(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    code = await _code(http, stack, tenant, [group], capacity=25)  # the low mark is 20
    for i in range(10):
        assert (await _scan(http, stack, code, f"10.3.0.{i}")).status_code == 200

    async def lows() -> list[Any]:
        items = await timeline(http, stack, tenant, group)
        return [i for i in items if i["type"] == "livecode_low"]

    async def scanned() -> int:
        items = await timeline(http, stack, tenant, group)
        return sum(1 for i in items if i["type"] == "livecode_scanned")

    await eventually(scanned, lambda n: n == 10)
    await eventually(lows, lambda found: len(found) == 1)
    await stays(lambda: _len(lows), 1, for_seconds=2)


async def _len(found: Any) -> int:
    return len(await found())
