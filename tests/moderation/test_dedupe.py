"""Member dedupe (群成员去重): the plan as a pure function, then end to end — groups tagged into a
series through the event stream, a dry run, and the plan applied through Kafka to the sim
platform — over HTTP and over gRPC."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format

from services.gen.shequn.v1 import (
    actions_pb2,
    common_pb2,
    events_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    moderation_pb2,
    moderation_pb2_grpc,
)
from services.moderation.dedupe import Membership, Removal, Skip, plan, recheck
from services.runtime.store import client
from tests.clients import joined, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.ingestion.test_delivery import timeline
from tests.kafka import read_topic
from tests.moderation.test_moderation import decisions, grpc_auth, refused
from tests.waiting import eventually

T = datetime(2026, 11, 1, tzinfo=UTC)


def _m(group: str, member: str, minutes: int, role: str = "member") -> Membership:
    return Membership(group, member, T + timedelta(minutes=minutes), role)


PLANS = [
    ("the oldest membership is kept, the others removed in join order",
     [_m("g-a", "u-1", 2), _m("g-b", "u-1", 0), _m("g-c", "u-1", 1)],
     [("u-1", "g-b", ("g-c", "g-a"), ())]),
    ("a tie keeps the smallest group id",
     [_m("g-b", "u-1", 0), _m("g-a", "u-1", 0)],
     [("u-1", "g-a", ("g-b",), ())]),
    ("owners and admins stay in the groups they run",
     [_m("g-a", "u-1", 0), _m("g-b", "u-1", 1, "admin"), _m("g-c", "u-1", 2, "owner")],
     [("u-1", "g-a", (), (Skip("g-b", "admin"), Skip("g-c", "owner")))]),
    ("an admin's oldest membership is kept like anyone's",
     [_m("g-a", "u-1", 0, "admin"), _m("g-b", "u-1", 1)],
     [("u-1", "g-a", ("g-b",), ())]),
    ("members in one group are untouched",
     [_m("g-a", "u-1", 0), _m("g-a", "u-2", 0), _m("g-b", "u-2", 1), _m("g-c", "u-3", 0)],
     [("u-2", "g-a", ("g-b",), ())]),
    ("nobody in two groups: no plan", [_m("g-a", "u-1", 0), _m("g-b", "u-2", 0)], []),
]  # fmt: skip


@pytest.mark.parametrize(("case", "memberships", "expected"), PLANS)
def test_plan(
    case: str,
    memberships: list[Membership],
    expected: list[tuple[str, str, tuple[str, ...], tuple[Skip, ...]]],
) -> None:
    found = plan(memberships)
    assert [(p.member_id, p.kept.group_id, p.removals, p.skipped) for p in found] == expected


RECHECKS = [
    ("still in both groups", [_m("g-a", "u-1", 0), _m("g-b", "u-1", 1)], None),
    ("left the group since the plan", [_m("g-a", "u-1", 0)], "left"),
    ("left the group kept", [_m("g-b", "u-1", 1)], "kept_group_left"),
    ("became an admin", [_m("g-a", "u-1", 0), _m("g-b", "u-1", 1, "admin")], "admin"),
]


@pytest.mark.parametrize(("case", "now", "reason"), RECHECKS)
def test_recheck_at_apply(case: str, now: list[Membership], reason: str | None) -> None:
    removal = Removal("u-1", "g-b", "g-a")
    due, skipped = recheck([removal], {(m.group_id, m.member_id): m for m in now})
    assert (due, skipped) == (([removal], []) if reason is None else ([], [(removal, reason)]))


_HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _at(minutes: int) -> str:
    return (_HOUR_AGO + timedelta(minutes=minutes)).isoformat()


def _event(group_id: str, kind: str, /, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"ev-{uuid.uuid4().hex}", "type": kind, "group_id": group_id, **fields}


def _join(group: str, member: str, minutes: int, role: str = "member") -> dict[str, Any]:
    at = _at(minutes)
    return {**joined(group, member), "member": {"id": member, "role": role}, "occurred_at": at}


def _pairs(items: list[dict[str, Any]], *extra: str) -> set[tuple[str, ...]]:
    return {(i["member_id"], i["group_id"], *(i[e] for e in extra)) for i in items}


def _kicks(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (i["member"]["id"], i.get("status", ""), i["text"])
        for i in items
        if i["type"] == "kick_member"
    ]


async def _tag_by_grpc(stack: Stack, tenant: Tenant, group: str, tags: list[str]) -> None:
    """A tags change by a plain member that also carries a different name, as a platform
    reporting the whole group might: only the tags changed, so nothing is renamed."""
    event = events_pb2.Event(event_id=f"ev-{uuid.uuid4().hex}", group_id=group)
    updated = event.group_updated
    updated.group.CopyFrom(events_pb2.GroupInfo(name="随便改个名", tags=tags))
    updated.changes.append(events_pb2.GROUP_CHANGE_TAGS)
    updated.actor.CopyFrom(common_pb2.Member(id="u-6", role=common_pb2.GROUP_ROLE_MEMBER))
    async with grpc.aio.insecure_channel(stack.grpc("ingestion")) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        request = ingest_pb2.PublishRequest(event=event)
        await stub.Publish(request, metadata=grpc_auth(tenant.operator))


async def test_dedupe_a_series_dry_run_then_apply(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    prefix = f"g-{uuid.uuid4().hex[:6]}"
    a, b, c, d = (f"{prefix}-{x}" for x in "abcd")
    moderation = stack.http("moderation")
    for group in (b, c):  # the lock must not take a tags change for a rename
        response = await http.put(
            moderation + f"/v1/rulesets/groups/{group}",
            json={"rename_lock": True},
            headers=tenant.headers("owner"),
        )
        assert response.status_code == 200
    owned = {"name": "春季1群", "owner_id": "u-owner", "tags": ["spring"]}
    await post_events(http, stack, tenant, [
        _event(a, "group_created", group=owned),
        _event(b, "group_created", group={"name": "春季2群"}),
        _event(c, "group_created", group={"name": "春季3群"}),
        _event(d, "group_created", group={"name": "秋季群", "tags": ["autumn"]}),
        _join(a, "u-1", 0), _join(b, "u-1", 1), _join(c, "u-1", 2),
        _join(c, "u-2", 0), _join(b, "u-2", 0),
        _join(a, "u-3", 0), _join(d, "u-3", 1),
        _join(a, "u-4", 0), _join(b, "u-4", 1, role="admin"),
        _join(b, "u-owner", 0), _join(a, "u-owner", 1),
        _join(a, "u-5", 0), _join(c, "u-5", 1),
        _join(b, "u-6", 0),
        _event(b, "group_updated", group={"tags": ["spring", "vip"]},
               actor={"id": "u-6", "role": "member"}),
    ])  # fmt: skip
    await _tag_by_grpc(stack, tenant, c, ["spring"])

    async def dry_run() -> dict[str, Any]:
        response = await http.post(
            moderation + "/v1/dedupe/plans", json={"series": "spring"}, headers=tenant.headers()
        )
        assert response.status_code == 201, response.text
        found: dict[str, Any] = response.json()
        return found

    expected = {"groups": 3, "members": 5, "removals": 4, "skipped": 2}
    planned = await eventually(dry_run, lambda p: p["counts"] == expected)
    assert planned["status"] == "planned" and planned["series"] == "spring"
    assert [(g["group_id"], g["name"]) for g in planned["groups"]] == [
        (a, "春季1群"), (b, "春季2群"), (c, "春季3群"),
    ], "a tags change renames nothing"  # fmt: skip
    members = {m["member_id"]: m for m in planned["members"]}
    assert {k: (m["kept"]["group_id"], m["removals"]) for k, m in members.items()} == {
        "u-1": (a, [b, c]), "u-2": (b, [c]), "u-4": (a, []), "u-5": (a, [c]), "u-owner": (b, []),
    }  # fmt: skip
    assert members["u-4"]["skipped"] == [{"group_id": b, "reason": "admin"}]
    assert members["u-owner"]["skipped"] == [{"group_id": a, "reason": "owner"}]
    plan_id = planned["plan_id"]
    for group in (b, c):
        assert _kicks(await timeline(http, stack, tenant, group)) == [], "a dry run kicks nobody"

    # u-5 leaves c before the plan is applied; a new dry run shows when moderation knows it.
    await post_events(http, stack, tenant, _event(c, "member_left", member={"id": "u-5"}))
    await eventually(dry_run, lambda p: p["counts"]["removals"] == 3)

    url = moderation + f"/v1/dedupe/plans/{plan_id}"
    refused = await http.post(url + "/apply", headers=tenant.headers("operator"))
    assert refused.status_code == 403, "removing members is an admin's power"
    applied = await http.post(url + "/apply", headers=tenant.headers("admin"))
    assert applied.status_code == 200, applied.text
    outcome = applied.json()["outcome"]
    assert _pairs(outcome["kicks"]) == {("u-1", b), ("u-1", c), ("u-2", c)}
    assert _pairs(outcome["skipped"], "reason") == {("u-5", c, "left")}
    assert applied.json()["status"] == "applied"

    def kick(record: Any) -> bool:
        return actions_pb2.Action.FromString(record.value).action_id.startswith(
            f"moderation:dedupe:{plan_id}:"
        )

    records = await read_topic(stack.kafka, "shequn.actions.v1", 3, kick)
    sent = [actions_pb2.Action.FromString(r.value) for r in records]
    assert {(x.kick_member.member_id, x.group_id) for x in sent} == _pairs(outcome["kicks"])

    def delivered(count: int) -> Callable[[list[dict[str, Any]]], bool]:
        return lambda items: sum(1 for k in _kicks(items) if k[1] == "delivered") == count

    in_b = await eventually(lambda: timeline(http, stack, tenant, b), delivered(1))
    in_c = await eventually(lambda: timeline(http, stack, tenant, c), delivered(2))
    reason = "同一系列群只保留一个（保留在「{}」）"
    assert _kicks(in_b) == [("u-1", "delivered", reason.format("春季1群"))]
    assert sorted(_kicks(in_c)) == [
        ("u-1", "delivered", reason.format("春季1群")),
        ("u-2", "delivered", reason.format("春季2群")),
    ]
    assert _kicks(await timeline(http, stack, tenant, a)) == []
    found = await decisions(http, stack, tenant, rule="dedupe")
    assert _pairs(found) == _pairs(outcome["kicks"])
    assert not any(x["blacklisted"] for x in found)
    assert await decisions(http, stack, tenant, rule="rename_lock") == []
    listed = await http.get(moderation + "/v1/blacklist", headers=tenant.headers("viewer"))
    assert listed.json()["members"] == []

    again = await http.post(url + "/apply", headers=tenant.headers("admin"))
    assert again.status_code == 409 and "was applied" in again.json()["error"]
    shown = (await http.get(url, headers=tenant.headers("viewer"))).json()
    assert shown["status"] == "applied" and shown["outcome"] == outcome
    other = await create_tenant(stack)
    assert (await http.get(url, headers=other.headers("viewer"))).status_code == 404
    assert (await http.post(url + "/apply", headers=other.headers())).status_code == 404


async def test_dedupe_refuses_bad_input_expired_plans_and_viewers(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    plans = stack.http("moderation") + "/v1/dedupe/plans"
    for body in ({}, {"series": "春 季"}, {"series": 7}):
        response = await http.post(plans, json=body, headers=tenant.headers())
        assert response.status_code == 422 and response.json()["field"] == "series", body
    viewer = await http.post(plans, json={"series": "s"}, headers=tenant.headers("viewer"))
    assert viewer.status_code == 403
    assert (await http.get(f"{plans}/nope", headers=tenant.headers())).status_code == 404

    planned = (await http.post(plans, json={"series": "s"}, headers=tenant.headers())).json()
    assert planned["counts"] == {"groups": 0, "members": 0, "removals": 0, "skipped": 0}
    mongo = client(stack.mongo_of("moderation"))  # 24 hours are too long to wait for
    try:
        await mongo["shequn_moderation"]["dedupe_plans"].update_one(
            {"_id": f"{tenant.id}:{planned['plan_id']}"}, {"$set": {"expires_at": 0}}
        )
    finally:
        await mongo.close()
    expired = await http.post(f"{plans}/{planned['plan_id']}/apply", headers=tenant.headers())
    assert expired.status_code == 409 and "expired" in expired.json()["error"]


async def test_dedupe_over_grpc(stack: Stack, tenant: Tenant, http: httpx.AsyncClient) -> None:
    x, y = (f"g-{uuid.uuid4().hex[:8]}" for _ in range(2))
    await post_events(http, stack, tenant, [
        _event(x, "group_created", group={"tags": ["s"]}),
        _event(y, "group_created", group={"tags": ["s"]}),
        _join(x, "u-1", 0), _join(y, "u-1", 1),
    ])  # fmt: skip
    owner, viewer = grpc_auth(tenant.owner), grpc_auth(tenant.viewer)
    async with grpc.aio.insecure_channel(stack.grpc("moderation")) as channel:
        stub = moderation_pb2_grpc.ModerationServiceStub(channel)
        code, details = await refused(
            stub.PlanDedupe(moderation_pb2.PlanDedupeRequest(series=""), metadata=owner)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("series:")
        code, _ = await refused(
            stub.PlanDedupe(moderation_pb2.PlanDedupeRequest(series="s"), metadata=viewer)
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED

        async def dry_run() -> dict[str, Any]:
            request = moderation_pb2.PlanDedupeRequest(series="s")
            return json_format.MessageToDict((await stub.PlanDedupe(request, metadata=owner)).plan)

        planned = await eventually(dry_run, lambda p: p["counts"]["removals"] == 1)
        apply = moderation_pb2.ApplyDedupePlanRequest(plan_id=planned["plan_id"])
        applied = await stub.ApplyDedupePlan(apply, metadata=owner)
        outcome = json_format.MessageToDict(applied.plan)["outcome"]
        assert _pairs(outcome["kicks"]) == {("u-1", y)}
        code, _ = await refused(stub.ApplyDedupePlan(apply, metadata=owner))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        get = moderation_pb2.GetDedupePlanRequest(plan_id=planned["plan_id"])
        assert (await stub.GetDedupePlan(get, metadata=viewer)).plan["status"] == "applied"
        get = moderation_pb2.GetDedupePlanRequest(plan_id="nope")
        code, _ = await refused(stub.GetDedupePlan(get, metadata=viewer))
        assert code == grpc.StatusCode.NOT_FOUND
