"""Member tiers, without I/O: regular until a purchase, buyer, core with repeat purchases and
spend."""

from __future__ import annotations

from services.engagement.tiers import TierRules, tier_of

RULES = TierRules()


def test_a_purchase_makes_a_buyer_and_repeat_purchases_with_spend_make_core() -> None:
    assert tier_of(0, 0, RULES) == "regular"
    assert tier_of(1, 9_900, RULES) == "buyer"
    assert tier_of(1, 90_000, RULES) == "buyer", "one order, however large, is not repeat"
    assert tier_of(2, 49_999, RULES) == "buyer", "repeat, but under the spend"
    assert tier_of(2, 50_000, RULES) == "core"


def test_the_thresholds_are_settings() -> None:
    strict = TierRules(buyer_min_spend=100, core_min_orders=3, core_min_spend=1_000)
    assert tier_of(1, 9_999, strict) == "regular"
    assert tier_of(2, 200_000, strict) == "buyer"
    assert tier_of(3, 100_000, strict) == "core"
