"""SOP schedules (API.md "Campaign") against the real stack: each (group, slot) sent once with
dismissed groups skipped, the runs and their outcomes, an edit that moves the slots, and two
replicas (one killed and started again) that between them send every slot once."""

from __future__ import annotations

import asyncio
import itertools
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.gen.shequn.v1 import actions_pb2
from services.runtime.bus import ensure_topics
from services.runtime.store import client
from tests.clients import actions_in, post_events
from tests.conftest import Stack, Tenant, start_service
from tests.ingestion.isolated import isolated_env, settings_of
from tests.kafka import read_all
from tests.waiting import eventually, stays

EVERY_2S = "* * * * * */2"  # the sixth field: seconds


async def _runs(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, schedule: str) -> Any:
    url = stack.http("campaign") + f"/v1/sop/schedules/{schedule}/runs"
    return (await http.get(url, headers=tenant.headers())).json()["runs"]


async def test_each_group_gets_each_slot_once_and_an_edit_moves_the_slots(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    tag = f"sop-{uuid.uuid4().hex[:6]}"
    kept, gone = f"g-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    created = [
        {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": g,
         "group": {"name": name, "tags": [tag]}}
        for g, name in ((kept, "福利群"), (gone, "旧群"))
    ]  # fmt: skip
    dismissed = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_dismissed", "group_id": gone}
    await post_events(http, stack, tenant, [*created, dismissed])
    url = stack.http("campaign") + "/v1/sop/schedules"

    async def directory() -> Any:
        found = await http.get(
            stack.http("campaign") + "/v1/directory/groups", params={"tag": tag},
            headers=tenant.headers(),
        )  # fmt: skip
        return sorted((g["group_id"], g["status"]) for g in found.json()["groups"])

    await eventually(directory, lambda d: len(d) == 2 and ("dismissed" in dict(d).values()))
    body = {"name": "打卡提醒", "cron": EVERY_2S, "tag": tag, "text": "{group_name}：记得签到"}
    made = await http.post(url, json=body, headers=tenant.headers("operator"))
    assert made.status_code == 201, made.text
    schedule = made.json()["schedule_id"]

    def fired(n: int) -> Any:
        return lambda runs: sum(r["state"] == "fired" and r["counts"]["pending"] == 0
                                for r in runs) >= n  # fmt: skip

    runs = await eventually(lambda: _runs(http, stack, tenant, schedule), fired(3))
    assert all(r["skipped"] == [] for r in runs)  # a dismissed group is not in the tag's audience
    assert {g["outcome"] for r in runs if r["state"] == "fired" for g in r["groups"]} <= {
        "delivered", "pending",
    }  # fmt: skip
    # Edited to once a year: no slot comes any more.
    yearly = {**body, "cron": "0 0 1 1 *"}
    edited = await http.put(f"{url}/{schedule}", json=yearly, headers=tenant.headers("operator"))
    next_slot = datetime.fromisoformat(edited.json()["next_slot"])
    assert next_slot - datetime.now(UTC) > timedelta(days=20)  # New Year's, in Shanghai
    await asyncio.sleep(1)
    slots = len(await _runs(http, stack, tenant, schedule))
    await stays(lambda: _count(http, stack, tenant, schedule), slots, for_seconds=4)

    sent = [a for a in await actions_in(http, stack, tenant, kept, source="campaign")]
    assert len(sent) == slots and {a["text"] for a in sent} == {"福利群：记得签到"}
    assert await actions_in(http, stack, tenant, gone, source="campaign") == []
    assert (
        await http.delete(f"{url}/{schedule}", headers=tenant.headers("operator"))
    ).status_code == 204
    assert (await http.get(f"{url}/{schedule}", headers=tenant.headers())).status_code == 404


async def _count(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, schedule: str) -> int:
    return len(await _runs(http, stack, tenant, schedule))


async def test_two_replicas_and_a_restart_send_every_slot_once(
    stack: Stack, tmp_path: Path
) -> None:
    prefix = f"sop{uuid.uuid4().hex[:8]}"
    env = isolated_env(stack, prefix)
    settings = settings_of(env)
    await ensure_topics(settings, [settings.topic_events, settings.topic_actions,
                                   settings.topic_action_results])  # fmt: skip
    mongo = client(stack.mongo)
    campaign = mongo[f"{prefix}_campaign"]
    groups = [f"g-{i}" for i in range(3)]
    await campaign["groups"].insert_many([
        {"_id": f"t:{g}", "tenant_id": "t", "group_id": g, "platform": "PLATFORM_SIM",
         "status": "active", "name": g}
        for g in groups
    ])  # fmt: skip
    now = datetime.now(UTC)
    await campaign["sop_schedules"].insert_one({
        "_id": "t:s-1", "tenant_id": "t", "schedule_id": "s-1", "name": "x", "cron": "* * * * * *",
        "timezone": None, "groups": groups, "tag": None, "owner": None, "text": "{group_name}",
        "next_slot": int(now.timestamp() * 1e6) // 1_000_000 * 1_000_000 + 2_000_000,
    })  # fmt: skip
    log = tmp_path / "campaign.log"
    first, second = start_service("campaign", env, log), start_service("campaign", env, log)
    try:
        await asyncio.sleep(6)  # both sweeping, every second a slot
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        await asyncio.sleep(3)  # the other alone
        second.send_signal(signal.SIGKILL)
        second.wait(10)
        await asyncio.sleep(3)  # nobody: these slots fire late, within the grace
        again = start_service("campaign", env, log)
        try:
            slots = campaign["sop_slots"]
            await eventually(lambda: _fired_through(slots, datetime.now(UTC)), bool, within=60)
        finally:
            again.terminate()
            again.wait(30)
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
    docs = [d async for d in campaign["sop_slots"].find({})]
    actions = await read_all(stack.kafka, settings.topic_actions)
    await mongo.drop_database(f"{prefix}_campaign")
    await mongo.close()
    taken = [actions_pb2.Action.FromString(m.value or b"") for m in actions]
    counted = Counter(a.action_id for a in taken)
    slots_seen = sorted(d["slot"] for d in docs)
    assert len(slots_seen) >= 8, slots_seen  # through both lives and the gap between
    gaps = {b - a for a, b in itertools.pairwise(slots_seen)}
    assert gaps == {1_000_000}, "a slot every second, none left out"
    assert all(d["state"] == "fired" for d in docs)
    # Every group's action of every slot; twice only for a slot a killed replica was producing
    # (the same id: delivery sends it once).
    assert set(counted) == {
        f"campaign:sop:t:s-1:{slot}:{i}" for slot in slots_seen for i in range(len(groups))
    }
    twice = {action_id.rsplit(":", 2)[1] for action_id, n in counted.items() if n > 1}
    assert len(twice) <= 2, counted.most_common(6)


async def _fired_through(slots: Any, at: datetime) -> bool:
    latest = await slots.find_one({}, sort=[("slot", -1)])
    return bool(latest) and latest["slot"] >= int(at.timestamp() * 1e6) - 1_000_000


async def test_steps_relative_to_a_groups_creation_and_a_members_join(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """ "Day 0 after creation" reaches the groups created on the slot's day; "day 1 after
    joining" @mentions the members who joined the day before and are still there."""
    tag = f"sop-{uuid.uuid4().hex[:6]}"
    slot = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    new, old = f"g-new-{uuid.uuid4().hex[:4]}", f"g-old-{uuid.uuid4().hex[:4]}"

    def at(shift: timedelta) -> str:
        return (slot + shift).isoformat()

    def event(kind: str, group_id: str, when: str, **body: Any) -> dict[str, Any]:
        return {"event_id": f"ev-{uuid.uuid4().hex}", "type": kind, "group_id": group_id,
                "occurred_at": when, **body}  # fmt: skip

    def info(name: str) -> dict[str, Any]:
        return {"name": name, "tags": [tag]}

    day = timedelta(days=1)
    await post_events(http, stack, tenant, [
        event("group_created", new, at(-timedelta(seconds=5)), group=info("新群")),
        event("group_created", old, at(-2 * day), group=info("老群")),
        event("member_joined", old, at(-day), member={"id": "u-yday", "name": "小李"}),
        event("member_joined", old, at(-day), member={"id": "u-gone", "name": "小走"}),
        event("member_left", old, at(-day + timedelta(hours=1)), member={"id": "u-gone"}),
        event("member_joined", old, at(-timedelta(seconds=5)), member={"id": "u-today"}),
        event("member_joined", old, at(-2 * day), member={"id": "u-older"}),
    ])  # fmt: skip
    url = stack.http("campaign") + "/v1/sop/schedules"

    async def directory() -> Any:
        found = await http.get(stack.http("campaign") + "/v1/directory/groups",
                               params={"tag": tag}, headers=tenant.headers())  # fmt: skip
        return found.json()["groups"]

    await eventually(directory, lambda d: len(d) == 2)
    when = {"at": slot.time().isoformat(), "event": "group_created", "days": 0}
    welcome = {"name": "建群当天", "tag": tag, "timezone": "UTC", "after": when,
               "text": "欢迎来到{group_name}"}  # fmt: skip
    third = {"name": "入群次日", "tag": tag, "timezone": "UTC",
             "after": {**when, "event": "member_joined", "days": 1},
             "text": "{members} 入群第二天，来领新人券吧"}  # fmt: skip
    made = [
        await http.post(url, json=s, headers=tenant.headers("operator")) for s in (welcome, third)
    ]
    assert [m.status_code for m in made] == [201, 201], [m.text for m in made]
    both = {**welcome, "cron": "* * * * *"}
    refused = await http.post(url, json=both, headers=tenant.headers("operator"))
    assert refused.status_code == 422 and "exactly one of cron and after" in refused.text

    async def sent() -> list[Any]:
        return [*await actions_in(http, stack, tenant, new, source="campaign"),
                *await actions_in(http, stack, tenant, old, source="campaign")]  # fmt: skip

    found = await eventually(sent, lambda a: len(a) >= 2, within=30)
    await stays(lambda: _texts(sent), sorted(a["text"] for a in found), for_seconds=2)
    assert sorted(a["text"] for a in found) == ["@小李 入群第二天，来领新人券吧", "欢迎来到新群"]
    runs = await _runs(http, stack, tenant, made[1].json()["schedule_id"])
    assert [g["group_id"] for g in runs[0]["groups"]] == [old]


async def _texts(sent: Any) -> list[str]:
    return sorted(a["text"] for a in await sent())
