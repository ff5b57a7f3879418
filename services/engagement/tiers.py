"""Member tiers (普通 → 消费 → 核心), pure: what a member's orders make of them. A member is
`regular` (普通) until their spend reaches `buyer_min_spend`, then a `buyer` (消费); with
`core_min_orders` orders and `core_min_spend` spent, `core` (核心). Spend is counted in CNY, the
currency of the platforms served; orders in another currency count as orders only."""

from __future__ import annotations

from pydantic import BaseModel, Field

TIERS = ("regular", "buyer", "core")


class TierRules(BaseModel):
    buyer_min_spend: float = Field(0.01, ge=0, le=10**9, description="CNY spent to be a buyer")
    core_min_orders: int = Field(2, ge=1, le=10**6)
    core_min_spend: float = Field(500.0, ge=0, le=10**9, description="CNY spent to be core")


def tier_of(orders: int, spend_minor: int, rules: TierRules) -> str:
    spend = spend_minor / 100
    if orders >= rules.core_min_orders and spend >= rules.core_min_spend:
        return "core"
    if orders and spend >= rules.buyer_min_spend:
        return "buyer"
    return "regular"
