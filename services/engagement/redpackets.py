"""Red-packet rules (红包), pure: what each kind pays, which messages are a show-your-order
(晒单: a picture with one of the keywords, paid once an admin approves), and the per-group
daily budget that no payout may take beyond."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.runtime.text import normalize

Kind = Literal["birthday", "task_reward", "show_order"]
KINDS: tuple[Kind, ...] = ("birthday", "task_reward", "show_order")


class Payout(BaseModel):
    enabled: bool = True
    amount: float = Field(8.88, gt=0, le=200, description="CNY; WeCom and WeChat cap one at 200")
    greeting: str = Field("恭喜发财，大吉大利", min_length=1, max_length=50)


class RedPacketRules(BaseModel):
    daily_budget: float = Field(100.0, ge=0, le=1_000_000, description="CNY per group per day")
    birthday: Payout = Field(default_factory=lambda: Payout(greeting="生日快乐！"))
    task_reward: Payout = Field(default_factory=lambda: Payout(greeting="任务完成，奖励到账"))
    show_order: Payout = Field(default_factory=lambda: Payout(greeting="感谢晒单！"))
    show_order_keywords: list[str] = Field(
        default_factory=lambda: ["晒单", "买家秀"], min_length=1, max_length=10
    )

    def payout(self, kind: Kind) -> Payout:
        found: Payout = getattr(self, kind)
        return found

    def budget_minor(self) -> int:
        return round(self.daily_budget * 100)


def is_show_order(kind: str, text: str, rules: RedPacketRules) -> bool:
    """A picture whose caption holds a keyword (normalized)."""
    if kind != "image" or not rules.show_order.enabled:
        return False
    said = normalize.keyword(text)
    return any(k and k in said for k in map(normalize.keyword, rules.show_order_keywords))


def minor(amount: float) -> int:
    return round(amount * 100)
