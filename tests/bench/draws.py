"""1,000 lottery draws at once over HTTP: 200 members with points for 5 draws each, a stock of
100 prizes. Prints draws/s and what was won, paid and left: nothing oversold or overdrawn."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx

from tests.conftest import Stack, create_tenant

DRAWERS, EACH, STOCK = 200, 5, 100


async def bench_draws(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    url = stack.http("engagement")
    async with httpx.AsyncClient(timeout=120) as http:
        admin, operator = tenant.headers("admin"), tenant.headers("operator")
        prizes = [
            {"name": "帆布袋", "weight": 1, "stock": STOCK // 2},
            {"name": "5元券", "weight": 1, "stock": STOCK // 2},
        ]
        made = await http.post(
            f"{url}/v1/lotteries",
            json={"name": "bench", "cost": 50, "prizes": prizes},
            headers=admin,
        )
        lottery = made.json()["lottery_id"]
        members = [f"u-{i}" for i in range(DRAWERS)]
        grants = [{"grant_id": f"seed-{m}", "member_id": m, "points": 50 * EACH} for m in members]
        await asyncio.gather(
            *(http.post(f"{url}/v1/points/grants", json=g, headers=admin) for g in grants)
        )
        draws = f"{url}/v1/lotteries/{lottery}/draws"
        started = time.monotonic()
        answers = await asyncio.gather(*(
            http.post(draws, json={"member_id": m}, headers=operator)
            for m in members for _ in range(EACH)
        ))  # fmt: skip
        took = time.monotonic() - started
        outcomes = Counter((a.status_code, a.json().get("error")) for a in answers)
        won = sum(1 for a in answers if a.status_code == 200 and a.json()["prize"])
        left = await http.get(f"{url}/v1/lotteries/{lottery}", headers=admin)
        remaining = sum(p["remaining"] for p in left.json()["prizes"])
        balances = await asyncio.gather(*(
            http.get(f"{url}/v1/members/{m}/points", headers=admin) for m in members
        ))  # fmt: skip
        spent = sum(50 * EACH - b.json()["balance"] for b in balances)
        negative = sum(b.json()["balance"] < 0 for b in balances)
    rate = len(answers) / took
    print(
        f"\nlottery: {len(answers):,} concurrent draws in {took:.1f} s ({rate:,.0f} draws/s); "
        f"won {won} of a stock of {STOCK}, {remaining} left, {won + remaining} accounted for; "
        f"{spent // 50} draws paid for; negative balances {negative}; answers {dict(outcomes)}"
    )
