"""The load that `make bench` applies, as a new operator's groups would: 200 groups and 20,000
members chatting ordinarily over `POST /v1/events`, and ads posted on Telegram groups whose
warnings arrive at a stand-in Bot API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import Stack, Tenant
from tests.fakes import FakeTelegram

GROUPS = 200
MEMBERS = 20_000
BATCH = 500
_CHAT = ["今天有什么优惠吗", "收到，谢谢群主", "几点开始抢购?", "我也想要一份", "明天见", "好的"]
AD = "加微信 vx: shop_8888 领福利"


def chat_events(run: str, start: int, count: int) -> list[dict[str, Any]]:
    """Ordinary chat: member i posts in group i % 200, so one member stays in one group."""
    events = []
    for i in range(start, start + count):
        member = i % MEMBERS
        events.append(
            {
                "event_id": f"{run}-{i}",
                "type": "message_posted",
                "group_id": f"g-{member % GROUPS}",
                "member": {"id": f"u-{member}", "name": f"用户{member}"},
                "message": {"text": f"{_CHAT[i % len(_CHAT)]} #{i}"},
            }
        )
    return events


def ad_event(run: str, n: int) -> dict[str, Any]:
    """An ad by a member new to a Telegram group of its own (ids Telegram would give)."""
    return {
        "event_id": f"{run}-ad-{n}",
        "type": "message_posted",
        "platform": "telegram",
        "group_id": ad_chat(run, n),
        "member": {"id": str(7_000_000_000 + n), "name": "推广"},
        "message": {"text": AD, "id": str(n + 1)},
    }


def ad_chat(run: str, n: int) -> str:
    return f"-100{int(run, 16) % 10**6:06d}{n:04d}"


def join_event(run: str, n: int) -> dict[str, Any]:
    """A newcomer to a Telegram group of its own, to be welcomed there."""
    return {
        "event_id": f"{run}-join-{n}",
        "type": "member_joined",
        "platform": "telegram",
        "group_id": join_chat(run, n),
        "member": {"id": str(8_000_000_000 + n), "name": "新朋友"},
    }


def join_chat(run: str, n: int) -> str:
    return f"-101{int(run, 16) % 10**6:06d}{n:04d}"


async def post(http: httpx.AsyncClient, stack: Stack, events: list[dict[str, Any]]) -> None:
    response = await http.post(stack.http("ingestion") + "/v1/events", json={"events": events})
    assert response.status_code == 202, response.text


@dataclass
class Reactions:
    """Ads (or joins) posted and when, and when their warnings (or welcomes) reached the Bot
    API (one clock)."""

    posted: dict[str, float] = field(default_factory=dict)  # chat → when the POST began

    def answered(self, telegram: FakeTelegram) -> dict[str, float]:
        """Chat → milliseconds from the ad's POST to the first sendMessage in that chat."""
        first: dict[str, float] = {}
        for call in telegram.calls:
            chat = str(call.params.get("chat_id"))
            if call.method == "sendMessage" and chat in self.posted and chat not in first:
                first[chat] = (call.at - self.posted[chat]) * 1000
        return first


async def chat_with_ads(
    http: httpx.AsyncClient,
    stack: Stack,
    *,
    rate: int,
    seconds: float,
    ad_every: float,
    halfway: Callable[[], Coroutine[Any, Any, None]],
) -> tuple[Reactions, Reactions, int, float]:
    """Chat at `rate` events/s in posts of a tenth of a second, an ad alone every `ad_every`
    seconds and a join alone as often; `halfway` runs once in the middle (a memory reading
    under load). Returns the ads, the joins, the chat events sent and their rate."""
    run = uuid.uuid4().hex[:6]
    reactions, welcomes = Reactions(), Reactions()
    per_post = max(1, rate // 10)
    posts: set[asyncio.Task[None]] = set()

    async def post_ad(n: int) -> None:
        reactions.posted[ad_chat(run, n)] = time.monotonic()
        await post(http, stack, [ad_event(run, n)])

    async def post_join(n: int) -> None:
        welcomes.posted[join_chat(run, n)] = time.monotonic()
        await post(http, stack, [join_event(run, n)])

    started = time.monotonic()
    sent = ads = 0
    probe: asyncio.Task[None] | None = None
    while (elapsed := time.monotonic() - started) < seconds:
        if elapsed >= ads * ad_every:
            posts.add(asyncio.create_task(post_ad(ads)))
            posts.add(asyncio.create_task(post_join(ads)))
            ads += 1
        if elapsed >= sent / rate:
            posts.add(asyncio.create_task(post(http, stack, chat_events(run, sent, per_post))))
            sent += per_post
        if probe is None and elapsed >= seconds / 2:
            probe = asyncio.create_task(halfway())
        await asyncio.sleep(0.01)
        for done in [p for p in posts if p.done()]:
            done.result()  # a refused post ends the bench with its answer
            posts.discard(done)
    await asyncio.gather(*posts, *([probe] if probe else []))
    return reactions, welcomes, sent, sent / (time.monotonic() - started)


async def counted(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> int:
    """Messages analytics has counted for the tenant, over its groups."""

    async def group(g: int) -> int:
        r = await http.get(
            stack.http("analytics") + f"/v1/stats/groups/g-{g}/daily",
            headers=tenant.headers("viewer"),
        )
        return sum(day["messages"] for day in r.json()["days"])

    return sum(await asyncio.gather(*(group(g) for g in range(GROUPS))))


async def flood(http: httpx.AsyncClient, stack: Stack, events: int, clients: int = 4) -> float:
    """`events` of chat in posts of 500 from `clients` at once, as fast as accepted; returns
    the rate at which they were accepted (events/s)."""
    run = uuid.uuid4().hex[:6]
    queue = list(range(0, events, BATCH))
    started = time.perf_counter()

    async def client() -> None:
        while queue:
            start = queue.pop()
            await post(http, stack, chat_events(run, start, min(BATCH, events - start)))

    await asyncio.gather(*(client() for _ in range(clients)))
    return events / (time.perf_counter() - started)
