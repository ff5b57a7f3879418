"""Lottery: the pick without I/O; concurrent draws through the running service; a draw
interrupted at each step finished once, against the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.engagement.lotteries import DRAWS, STOCK, Lotteries
from services.engagement.lottery import Lottery, Prize, pick
from services.engagement.points import Grant, Points
from services.runtime.store import Store
from tests.conftest import Stack, Tenant, create_tenant


def test_prizes_are_drawn_by_weight_among_those_left() -> None:
    counts = Counter(pick([1, 3], [5, 5], 0) for _ in range(4000))
    assert 800 < counts[0] < 1200 and 2800 < counts[1] < 3200
    assert {pick([1, 3], [5, 0], 0) for _ in range(50)} == {0}
    assert pick([1], [1], 9, lambda _: 5) is None, "a blank"
    with pytest.raises(LookupError):
        pick([1, 1], [0, 0], 100)


async def _grant(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, member: str, points: int
) -> None:
    body = {"grant_id": f"seed-{member}", "member_id": member, "points": points}
    response = await http.post(
        stack.http("engagement") + "/v1/points/grants", json=body, headers=tenant.headers("admin")
    )
    assert response.status_code == 200, response.text


async def _lottery(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, stock: int) -> str:
    body = {
        "name": "双十二",
        "prizes": [
            {"name": "红包", "weight": 1, "stock": stock},
            {"name": "抱枕", "weight": 3, "stock": stock},
        ],
    }
    response = await http.post(
        stack.http("engagement") + "/v1/lotteries", json=body, headers=tenant.headers("admin")
    )
    assert response.status_code == 201, response.text
    return str(response.json()["lottery_id"])


async def _draws_counted(http: httpx.AsyncClient, stack: Stack) -> dict[str, float]:
    """Engagement's shequn_lottery_draws_total, by outcome."""
    exported = (await http.get(stack.http("engagement") + "/metrics")).text
    found = {}
    for line in exported.splitlines():
        if line.startswith("shequn_lottery_draws_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            found[outcome] = float(line.rsplit(" ", 1)[1])
    return found


async def test_two_hundred_concurrent_draws_never_oversell_or_overdraw(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("engagement") + "/v1/lotteries"
    lottery = await _lottery(http, stack, tenant, 5)  # a stock of 10 in all
    member = f"u-{uuid.uuid4().hex[:6]}"
    await _grant(http, stack, tenant, member, 250)  # a balance for 5 draws
    crowd = [f"u-{uuid.uuid4().hex[:6]}" for _ in range(30)]
    await asyncio.gather(*(_grant(http, stack, tenant, m, 50) for m in crowd))
    drawers = [member] * 170 + crowd

    async def draw(m: str) -> httpx.Response:
        return await http.post(
            f"{url}/{lottery}/draws", json={"member_id": m}, headers=tenant.headers("operator")
        )

    before = await _draws_counted(http, stack)
    answers = await asyncio.gather(*(draw(m) for m in drawers))
    outcomes = Counter((r.status_code, r.json().get("error")) for r in answers)
    won = [r.json() for r in answers if r.status_code == 200]
    assert len(won) == 10 and all(w["prize"]["name"] in ("红包", "抱枕") for w in won), outcomes
    assert sum(r.status_code == 409 for r in answers) == 190, outcomes
    assert set(outcomes) <= {(200, None), (409, "insufficient_points"), (409, "sold_out")}
    after = await _draws_counted(http, stack)
    counted = {k: after[k] - before.get(k, 0) for k in after}
    assert counted["won"] == 10, counted
    assert counted["sold_out"] + counted["insufficient_points"] == 190, counted
    mine = [
        r for r, m in zip(answers, drawers, strict=True) if m == member and r.status_code == 200
    ]
    assert len(mine) <= 5
    found = (await http.get(f"{url}/{lottery}", headers=tenant.headers("viewer"))).json()
    assert [p["remaining"] for p in found["prizes"]] == [0, 0]
    assert sum(p["stock"] for p in found["prizes"]) == 10

    async def balance(m: str) -> int:
        r = await http.get(
            stack.http("engagement") + f"/v1/members/{m}/points", headers=tenant.headers("viewer")
        )
        return int(r.json()["balance"])

    balances = {m: await balance(m) for m in {member, *crowd}}
    assert all(b >= 0 for b in balances.values())
    paid = (250 - balances[member]) + sum(50 - balances[m] for m in crowd)
    assert paid == 50 * 10, "every prize paid for once, every refused draw paid nothing"
    draws = (
        await http.get(
            f"{url}/{lottery}/draws",
            params={"member_id": member, "limit": 500},
            headers=tenant.headers("viewer"),
        )
    ).json()["draws"]
    assert Counter(d["state"] for d in draws if d["state"] == "won") == Counter({"won": len(mine)})
    assert all(d["state"] in ("won", "refused", "refunded") for d in draws)


async def test_a_draw_id_answers_the_same_draw_and_stays_in_its_tenant(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("engagement") + "/v1/lotteries"
    lottery = await _lottery(http, stack, tenant, 3)
    member = f"u-{uuid.uuid4().hex[:6]}"
    await _grant(http, stack, tenant, member, 120)
    body = {"member_id": member, "draw_id": "try-1"}
    first = await http.post(f"{url}/{lottery}/draws", json=body, headers=tenant.headers("operator"))
    again = await http.post(f"{url}/{lottery}/draws", json=body, headers=tenant.headers("operator"))
    assert (
        first.status_code == 200 and again.json() == first.json() and first.json()["balance"] == 70
    )
    other = await create_tenant(stack)
    theirs = await http.post(f"{url}/{lottery}/draws", json=body, headers=other.headers("operator"))
    assert theirs.status_code == 404
    assert (await http.get(f"{url}/{lottery}", headers=other.headers("viewer"))).status_code == 404
    bad = {"name": "x", "prizes": [{"name": "a", "weight": 0, "stock": 1}]}
    refused = await http.post(url, json=bad, headers=tenant.headers("admin"))
    assert refused.status_code == 422 and refused.json()["field"] == "prizes.0.weight"
    assert (await http.post(url, json=bad, headers=tenant.headers("operator"))).status_code == 403


@pytest.fixture
async def lotteries(stack: Stack) -> AsyncIterator[Lotteries]:
    store = Store(stack.mongo_of("engagement"), f"lottery_{uuid.uuid4().hex[:8]}")
    yield Lotteries(store, Points(store))
    await store.client.drop_database(store.db.name)
    await store.close()


@pytest.mark.parametrize("died_after", ["started", "debited", "picked", "stock taken"])
async def test_a_draw_interrupted_at_any_step_is_finished_once(
    lotteries: Lotteries, died_after: str
) -> None:

    await lotteries.points.apply([Grant("t", "m", "seed", 100, "", datetime.now(UTC))])
    prize = Prize(name="p", weight=1, stock=2)
    lottery_id = await lotteries.create("t", Lottery(name="x", prizes=[prize]))
    lottery, _ = await lotteries._read("t", lottery_id)
    doc: dict[str, Any] = {
        "_id": f"t:{lottery_id}:d1", "tenant_id": "t", "lottery_id": lottery_id, "draw_id": "d1",
        "member_id": "m", "cost": 50, "state": "started", "at": 0, "position": "p",
        "unfinished_since": 0,
    }  # fmt: skip
    await lotteries.draws.insert_one(doc)
    # What the dead process did before it died:
    if died_after != "started":
        doc = await lotteries._started(doc, lottery)
    if died_after in ("picked", "stock taken"):
        doc = await lotteries._debited(doc, lottery)
    if died_after == "stock taken":
        stock_id = f"t:{lottery_id}:0"
        await lotteries.stock.update_one(
            {"_id": stock_id}, {"$inc": {"remaining": -1}, "$push": {"taken": doc["_id"]}}
        )
    assert await lotteries.repair() == 1
    assert await lotteries.repair() == 0
    finished = await lotteries.draws.database[DRAWS].find_one({"_id": doc["_id"]})
    assert (
        finished is not None and finished["state"] == "won" and "unfinished_since" not in finished
    )
    stock = await lotteries.draws.database[STOCK].find_one({"_id": f"t:{lottery_id}:0"})
    assert stock is not None and stock["remaining"] == 1 and stock["taken"] == [doc["_id"]]
    assert await lotteries.points.balance("t", "m") == 50
