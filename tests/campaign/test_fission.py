"""Fission tasks (任务宝) against the real stack: personal invite codes that fill a live code's
pool, joins through them attributed, counted once the invitee has stayed, and each rule that
keeps a join from counting — a self-invite, a blacklisted invitee, a returning member, one who
leaves before the stay is up, an invitee a second inviter also claims — then the reward given
exactly once, and the funnel."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.campaign import fissions, places
from services.campaign.blacklist import Blacklist
from services.campaign.coupon import Coupon
from services.campaign.coupons import Coupons
from services.campaign.fission import FissionTask, Reward
from services.campaign.fissions import Fissions
from services.campaign.groups import Groups
from services.campaign.joinways import JoinWays
from services.campaign.livecode import LiveCode
from services.campaign.livecodes import LiveCodes
from services.campaign.members import Members
from services.gen.shequn.v1 import common_pb2, decisions_pb2
from services.runtime.bus import Producer, ensure_topics
from services.runtime.envelope import Event, new_event
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.clients import joined, post_events
from tests.conftest import Stack, Tenant
from tests.kafka import produce, read_all
from tests.waiting import eventually, stays

STAY_HOURS = 0.002  # 7.2 s


def _at(when: datetime) -> str:
    return when.isoformat()


async def _post(http: httpx.AsyncClient, url: str, body: Any, tenant: Tenant) -> Any:
    answer = await http.post(url, json=body, headers=tenant.headers("admin"))
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def _blacklist(stack: Stack, tenant: Tenant, member: str) -> None:
    decision = decisions_pb2.Decision(
        decision_id=f"d-{uuid.uuid4().hex}", tenant_id=tenant.id, group_id="g-1",
        member_id=member, rule="ad", blacklisted=True,
    )  # fmt: skip
    decision.decided_at.FromDatetime(datetime.now(UTC))
    key = f"{tenant.id}:g-1".encode()
    await produce(stack.kafka, [("shequn.decisions.v1", key, decision.SerializeToString())])


async def test_invitees_count_once_stayed_and_the_reward_is_given_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("campaign")
    pool = [f"g-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    other_group = f"g-{uuid.uuid4().hex[:6]}"
    created = [
        {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": g,
         "group": {"name": f"福利{i}群"}}
        for i, g in enumerate([*pool, other_group])
    ]  # fmt: skip
    old = f"u-old-{uuid.uuid4().hex[:4]}"
    earlier = joined(other_group, old, occurred_at=_at(datetime.now(UTC) - timedelta(days=3)))
    await post_events(http, stack, tenant, [*created, earlier])
    code = f"lc-{uuid.uuid4().hex[:8]}"
    await _post(http, f"{url}/v1/livecodes", {"code": code, "groups": pool, "capacity": 50}, tenant)
    coupon_body = {"name": "邀请奖", "value": 10, "stock": 5}
    coupon = (await _post(http, f"{url}/v1/coupons", coupon_body, tenant))["coupon_id"]
    task = {"name": "邀请2位好友", "goal": 2, "livecode": code, "stay_hours": STAY_HOURS,
            "reward": {"coupon_id": coupon, "points": 30}}  # fmt: skip
    task_id = (await _post(http, f"{url}/v1/fission/tasks", task, tenant))["task_id"]
    tasks = f"{url}/v1/fission/tasks/{task_id}"
    alice, bob, bad = "u-alice", "u-bob", f"u-bad-{uuid.uuid4().hex[:4]}"
    mine = await _post(http, f"{tasks}/codes", {"member_id": alice, "group_id": pool[0]}, tenant)
    again = await _post(http, f"{tasks}/codes", {"member_id": alice}, tenant)
    assert again["code"] == mine["code"] and mine["code"].startswith("fx-")
    theirs = (await _post(http, f"{tasks}/codes", {"member_id": bob}, tenant))["code"]

    await _blacklist(stack, tenant, bad)
    asked: list[httpx.Response] = []  # until campaign's copy of the blacklist has the member

    async def ask() -> httpx.Response:
        asked.append(await http.post(f"{tasks}/codes", json={"member_id": bad},
                                     headers=tenant.headers("operator")))  # fmt: skip
        return asked[-1]

    refused = await eventually(ask, lambda a: a.status_code == 409)
    assert refused.json()["error"] == "member_id: blacklisted"
    issued_to_bad = int(any(a.status_code == 200 for a in asked))  # one code, however often

    scanned = await http.post(f"{url}/v1/livecodes/{mine['code']}/scan", json={})
    assert scanned.status_code == 200 and scanned.json()["group_id"] == pool[0]
    now = datetime.now(UTC)
    new1, new2, leaver = (f"u-{n}-{uuid.uuid4().hex[:4]}" for n in ("new1", "new2", "leaver"))
    through = {"scene": "livecode", "livecode": code, "occurred_at": _at(now)}
    joins = [
        joined(pool[0], new1, join_token=scanned.json()["join_token"], **through),
        joined(pool[0], new2, invite_code=mine["code"], **through),
        joined(pool[0], alice, invite_code=mine["code"], **through),  # a self-invite
        joined(pool[0], bad, invite_code=mine["code"], **through),  # blacklisted
        joined(pool[0], old, invite_code=mine["code"], **through),  # seen three days ago
        joined(pool[0], leaver, invite_code=mine["code"], **through),
    ]
    await post_events(http, stack, tenant, joins)
    # The leaver goes after a second; new1 joins a second group through Bob's code.
    left = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "member_left", "group_id": pool[0],
            "member": {"id": leaver}, "occurred_at": _at(now + timedelta(seconds=1))}  # fmt: skip
    claimed = joined(pool[1], new1, invite_code=theirs, scene="livecode", livecode=code,
                     occurred_at=_at(now + timedelta(seconds=1)))  # fmt: skip
    await post_events(http, stack, tenant, [left, claimed])

    async def funnel() -> Any:
        return (await http.get(f"{tasks}/funnel", headers=tenant.headers("viewer"))).json()

    done = await eventually(funnel, lambda f: f["completed"] == 1, within=60)
    assert done == {
        "task_id": task_id,
        "codes_issued": 2 + issued_to_bad,
        "scans": 1,
        "joins": 6,
        "counted": 2,
        "completed": 1,
        "not_counted": {"self_invite": 1, "blacklisted": 1, "inviter_blacklisted": 0,
                        "returning": 1, "ended": 0, "left": 1},
        "join_rate": 6.0,
        "completion_rate": 0.1667,
    }  # fmt: skip

    async def inviters() -> Any:
        page = await http.get(f"{tasks}/inviters", headers=tenant.headers("viewer"))
        return page.json()["inviters"]

    found = await eventually(inviters, lambda i: i and i[0]["reward"]["state"] == "given")
    assert [(i["member_id"], i["counted"]) for i in found] == [(alice, 2)]
    given = found[0]["reward"]["coupon_code"]

    async def rewarded() -> tuple[int, int]:
        issued = await http.get(f"{url}/v1/coupons/{coupon}", headers=tenant.headers())
        points = await http.get(
            stack.http("engagement") + f"/v1/members/{alice}/points", headers=tenant.headers()
        )
        return issued.json()["issued"], points.json()["balance"]

    await eventually(rewarded, lambda r: r == (1, 30))
    await stays(rewarded, (1, 30), for_seconds=3)  # the sweep runs every second
    assert (await inviters())[0]["reward"]["coupon_code"] == given


async def test_a_task_refuses_what_it_cannot_be(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("campaign") + "/v1/fission/tasks"
    headers = tenant.headers("operator")
    base = {"name": "x", "goal": 3, "livecode": "lc-nowhere", "reward": {"points": 5}}
    cases = [
        ({**base, "goal": 0}, 422, "goal"),
        ({**base, "reward": {}}, 422, "reward"),
        ({**base, "ends_at": "2026-12-31T00:00:00"}, 422, "ends_at"),
        (base, 404, "code"),  # the live code is not the tenant's
    ]
    for body, status, field in cases:
        answer = await http.post(url, json=body, headers=headers)
        assert (answer.status_code, answer.json().get("field")) == (status, field), answer.text
    code = f"lc-{uuid.uuid4().hex[:8]}"
    made = await http.post(stack.http("campaign") + "/v1/livecodes",
                           json={"code": code, "groups": ["g-1"]}, headers=headers)  # fmt: skip
    assert made.status_code == 201
    ended = {**base, "livecode": code, "ends_at": "2020-01-01T00:00:00+08:00"}
    task = await http.post(url, json=ended, headers=headers)
    assert task.status_code == 201
    asked = await http.post(f"{url}/{task.json()['task_id']}/codes", json={"member_id": "u-1"},
                            headers=headers)  # fmt: skip
    assert asked.status_code == 409 and asked.json()["error"] == "task_id: ended"
    # An invite code is no live code of its own: it fills its task's pool.
    missing = await http.get(stack.http("campaign") + "/v1/livecodes/fx-none", headers=headers)
    assert missing.status_code == 404


@contextlib.asynccontextmanager
async def _replicas(stack: Stack) -> AsyncIterator[tuple[Fissions, Fissions, Settings]]:
    """Two campaign replicas' fission tasks on one database of their own, with a task `f-1`
    (goal 2, a coupon and points) and Alice's code `alice`, Bob's `bob`."""
    settings = Settings(
        kafka_bootstrap=stack.kafka, topic_events=f"test-{uuid.uuid4().hex[:8]}.events"
    )
    store = Store(stack.mongo, f"shequn_test_fission_{uuid.uuid4().hex[:8]}")
    producer = Producer(settings)
    await ensure_topics(settings, [settings.topic_events])
    await producer.start()
    await store.create_indexes([*fissions.INDEXES, *places.INDEXES])

    def replica() -> Fissions:
        blacklist = Blacklist(store)
        codes = LiveCodes(
            store, producer, settings, JoinWays(store, producer, settings, Groups(store))
        )
        return Fissions(store, producer, settings, codes, Coupons(store, blacklist), blacklist,
                        Members(store))  # fmt: skip

    first, second = replica(), replica()
    try:
        pool = f"lc-{uuid.uuid4().hex[:8]}"
        await first.livecodes.create("t", LiveCode(code=pool, groups=["g-1", "g-2"]))
        coupon = await first.coupons.create("t", Coupon(name="奖", value=5, stock=10))
        reward = Reward(coupon_id=coupon, points=10)
        task = FissionTask(name="x", goal=2, reward=reward, livecode=pool, stay_hours=0)
        await first.create("t", task, "f-1")
        yield first, second, settings
    finally:
        await producer.stop()
        await store.client.drop_database(store.db.name)
        await store.close()


async def _join(f: Fissions, invitee: str, code: str, group: str, at: datetime) -> None:
    e = new_event(f"ev-{uuid.uuid4().hex}", "t", group, common_pb2.PLATFORM_SIM, at, at)
    e.member_joined.member.id, e.member_joined.invite_code = invitee, code
    await f.members.record([e])
    await f.joined([e])


async def test_concurrent_sweeps_of_two_replicas_give_the_reward_once(stack: Stack) -> None:
    """Two replicas sweeping at once, three times each: one coupon code, one reward event id
    (engagement books a reward by its id), one completion."""
    async with _replicas(stack) as (first, second, settings):
        code = (await first.code("t", "f-1", "u-a", None))["code"]
        now = datetime.now(UTC)
        for invitee in ("u-b", "u-c"):
            await _join(first, invitee, code, "g-1", now)
        await asyncio.gather(*(r.sweep() for r in (first, second) * 3))
        progress = await first.inviters("t", "f-1", 10, None)
        coupon = (await first.tasks.find_one({"_id": "t:f-1"}) or {})["reward"]["coupon_id"]
        issued = (await first.coupons.get("t", coupon))["issued"]
        events = await read_all(stack.kafka, settings.topic_events)
    [inviter] = progress["inviters"]
    assert (inviter["counted"], inviter["reward"]["state"], issued) == (2, "given", 1)
    earned = {Event.FromString(m.value).event_id for m in events}
    assert earned == {"campaign:fission:f-1:u-a"}


async def test_the_earlier_join_wins_whichever_partition_is_read_first(stack: Stack) -> None:
    async with _replicas(stack) as (first, _, _):
        alice = (await first.code("t", "f-1", "u-alice", None))["code"]
        bob = (await first.code("t", "f-1", "u-bob", None))["code"]
        now = datetime.now(UTC)
        await _join(first, "u-new", bob, "g-2", now + timedelta(seconds=1))  # read first
        await _join(first, "u-new", alice, "g-1", now)
        await _join(first, "u-new", bob, "g-2", now + timedelta(seconds=1))  # redelivered
        found = await first.invites.find_one({"_id": "t:f-1:u-new"})
        await first.sweep()
        funnel = await first.funnel("t", "f-1")
    assert found is not None and (found["inviter"], found["state"]) == ("u-alice", "joined")
    assert (funnel["joins"], funnel["counted"]) == (1, 1)
