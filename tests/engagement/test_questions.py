"""Quizzes and polls through the running services: of many correct answers at once one wins
and is paid once; a poll counts each member's first vote, hides its results until it closes,
then announces them; an unanswered quiz says its answer when it closes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.engagement.questions import is_correct, vote_of
from tests.clients import actions_in, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually, stays


def test_answers_and_votes_are_read_in_normalized_form() -> None:
    assert is_correct("長 城！", ["长城"]) and is_correct("ＡＢＣ", ["abc"])
    assert not is_correct("长城吧", ["长城"]) and not is_correct("", ["长城"])
    options = ["周六", "周日"]
    assert [vote_of(t, options) for t in ["1", "２", "週日", "3", "0", "周六吧"]] == [
        0, 1, 1, None, None, None,
    ]  # fmt: skip


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def _group(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> str:
    group = f"g-{uuid.uuid4().hex[:6]}"
    created = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group}
    await post_events(http, stack, tenant, [{**created, "group": {"name": "活动群"}}])
    return group


async def _ask(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, kind: str, body: dict[str, Any]
) -> httpx.Response:
    url = stack.http("engagement") + f"/v1/{kind}"
    # The group becomes known to engagement with its first event.
    return await eventually(
        lambda: http.post(url, json=body, headers=tenant.headers("operator")),
        lambda r: r.status_code != 404,
    )


async def test_of_many_correct_answers_at_once_one_wins_and_is_paid_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = await _group(http, stack, tenant)
    body = {"group_id": group, "question": "世界上最长的城墙？", "answers": ["长城"], "points": 30}
    asked = await _ask(http, stack, tenant, "quizzes", {**body, "closes_at": _in(120)})
    assert asked.status_code == 201, asked.text
    quiz = stack.http("engagement") + f"/v1/quizzes/{asked.json()['quiz_id']}"
    answers = ["长城", "長城", "长 城", "长城！"] * 5
    members = [f"u-{uuid.uuid4().hex[:6]}" for _ in answers]
    posts = [message(group, m, a) for m, a in zip(members, answers, strict=True)]
    posts.append(message(group, "u-wrong", "黄河"))
    await asyncio.gather(*(post_events(http, stack, tenant, [p]) for p in posts))
    found = await eventually(
        lambda: http.get(quiz, headers=tenant.headers("viewer")),
        lambda r: r.json()["state"] == "won",
    )
    winner = found.json()["winner"]["member_id"]
    assert winner in members and found.json()["answers"] == ["长城"]

    async def balance(m: str) -> int:
        url = stack.http("engagement") + f"/v1/members/{m}/points"
        return int((await http.get(url, headers=tenant.headers("viewer"))).json()["balance"])

    said = await eventually(lambda: actions_in(http, stack, tenant, group), lambda a: len(a) >= 2)
    assert said[0]["text"].startswith("【有奖竞猜】世界上最长的城墙？")
    assert "答对了" in said[1]["text"] and "30 积分" in said[1]["text"]
    await stays(lambda: _count(http, stack, tenant, group), 2)
    assert [await balance(m) for m in members].count(30) == 1 and await balance(winner) == 30
    assert sum([await balance(m) for m in members]) == 30

    other = await create_tenant(stack)
    assert (await http.get(quiz, headers=other.headers("viewer"))).status_code == 404


async def test_a_poll_counts_first_votes_hides_them_then_announces_them(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = await _group(http, stack, tenant)
    body = {"group_id": group, "question": "活动定在哪天？", "options": ["周六", "周日"]}
    asked = await _ask(http, stack, tenant, "polls", {**body, "closes_at": _in(6)})
    assert asked.status_code == 201, asked.text
    poll = stack.http("engagement") + f"/v1/polls/{asked.json()['poll_id']}"
    await post_events(http, stack, tenant, [
        message(group, "u-1", "1"), message(group, "u-2", "周日"), message(group, "u-3", "２"),
        message(group, "u-1", "2"),  # a second vote: the first counts
        message(group, "u-4", "大家好"),
    ])  # fmt: skip
    early = (await http.get(poll, headers=tenant.headers("viewer"))).json()
    assert early["state"] == "open" and "results" not in early
    closed = await eventually(
        lambda: http.get(poll, headers=tenant.headers("viewer")),
        lambda r: r.json()["state"] == "closed",
    )
    assert closed.json()["results"] == [
        {"option": "周六", "votes": 1},
        {"option": "周日", "votes": 2},
    ]
    said = await eventually(lambda: actions_in(http, stack, tenant, group), lambda a: len(a) >= 2)
    assert said[0]["text"].startswith("【投票】活动定在哪天？\n1. 周六\n2. 周日")
    assert said[1]["text"] == "投票结束，结果如下：\n周六：1 票\n周日：2 票"


async def test_an_unanswered_quiz_says_its_answer_when_it_closes(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = await _group(http, stack, tenant)
    body = {"group_id": group, "question": "谜语", "answers": ["月亮"], "points": 5}
    asked = await _ask(http, stack, tenant, "quizzes", {**body, "closes_at": _in(3)})
    said = await eventually(lambda: actions_in(http, stack, tenant, group), lambda a: len(a) >= 2)
    assert said[1]["text"] == "竞猜结束，没有人答对。答案是「月亮」。"
    quiz = stack.http("engagement") + f"/v1/quizzes/{asked.json()['quiz_id']}"
    assert (await http.get(quiz, headers=tenant.headers("viewer"))).json()["state"] == "closed"
    unknown = await http.post(
        stack.http("engagement") + "/v1/quizzes",
        json={**body, "group_id": "g-never-seen", "closes_at": _in(60)},
        headers=tenant.headers("operator"),
    )
    assert unknown.status_code == 404 and unknown.json()["field"] == "group_id"
    past = await http.post(
        stack.http("engagement") + "/v1/quizzes",
        json={**body, "group_id": group, "closes_at": _in(-60)},
        headers=tenant.headers("operator"),
    )
    assert past.status_code == 422 and past.json()["field"] == "closes_at"


async def _count(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> int:
    return len(await actions_in(http, stack, tenant, group))
