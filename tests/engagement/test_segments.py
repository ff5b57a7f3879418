"""Segments: who starts conversations and draws replies (pure), and a group's 10/20/70 split
through the running services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from services.engagement.segments import Day, Said, scored, segments
from tests.clients import joined, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually

T = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def said(member: str, minutes: float, event_id: str = "") -> Said:
    return Said(event_id or f"{member}-{minutes}", T + timedelta(minutes=minutes), member)


def test_starting_a_conversation_and_drawing_a_reply_score() -> None:
    day = scored(Day(), [
        said("a", 0),     # the day's first: starts a conversation
        said("b", 1),     # answers a within 2 minutes: a drew a reply
        said("b", 1.5),   # b goes on
        said("c", 5),     # too late to count as b's reply, not quiet long enough to start
        said("a", 20),    # after 10 quiet minutes: starts one
        said("d", 21),    # a drew a reply
    ])  # fmt: skip
    assert day.scores == {"a": 4}
    again = scored(day, [said("b", 1), said("e", 20.5)])  # b's copy, and a late message
    assert again.scores == day.scores and again.last == day.last


def test_the_split_is_ten_twenty_seventy_of_the_members() -> None:
    scores = {f"m{i}": 20 - i for i in range(20)}  # 20 who scored, in a group of 50
    split = segments(scores, 50)
    assert (split.koc, split.interactive, split.silent) == (
        ["m0", "m1", "m2", "m3", "m4"], 10, 35,
    )  # fmt: skip
    quiet = segments({"m0": 1}, 30)
    assert (len(quiet.koc), quiet.interactive, quiet.silent) == (1, 0, 29)
    assert segments({}, 0).silent == 0


async def test_a_groups_segments_come_from_its_day(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    members = [f"u-{i}" for i in range(10)]
    at = "2026-11-30T02:{:02d}:00Z"  # 10:xx on 30 November in Shanghai
    await post_events(
        http, stack, tenant, [joined(group, m, occurred_at=at.format(0)) for m in members]
    )
    talk = [("u-0", 1), ("u-1", 2), ("u-0", 3), ("u-2", 4), ("u-0", 20), ("u-3", 21)]
    await post_events(
        http, stack, tenant, [message(group, m, "聊聊", occurred_at=at.format(t)) for m, t in talk]
    )
    url = stack.http("engagement") + f"/v1/groups/{group}/segments"

    async def found() -> dict[str, object]:
        response = await http.get(
            url, params={"date": "2026-11-30"}, headers=tenant.headers("viewer")
        )
        return dict(response.json())

    split = await eventually(found, lambda s: s["koc"] == 1 and s["interactive"] == 1)
    assert split == {
        "date": "2026-11-30", "koc": 1, "interactive": 1, "silent": 8, "koc_members": ["u-0"],
    }  # fmt: skip
    bad = await http.get(url, params={"date": "30/11"}, headers=tenant.headers("viewer"))
    assert bad.status_code == 422 and bad.json()["field"] == "date"
    other = await create_tenant(stack)
    theirs = await http.get(url, params={"date": "2026-11-30"}, headers=other.headers("viewer"))
    assert theirs.json()["koc"] == 0 and theirs.json()["silent"] == 0
