"""Fission tasks (任务宝/裂变), pure: a task, its personal invite codes, and the rules that say
whether a join through one counts for its inviter.

Each member asks for a personal invite code: a live code of the task's pool that carries the
inviter. A join through it is attributed to that inviter, once per task and invitee (the first
inviter to bring someone keeps them), and counts once the invitee has stayed `stay_hours`; one
who leaves before then is uncounted. Self-invites, blacklisted invitees and members seen in
the tenant's groups before do not count. The inviter's reward is given once, when the count
reaches the goal."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from services.runtime.wellformed import KeyPart

_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: typed from a poster by people
NotCounted = Literal["self_invite", "blacklisted", "inviter_blacklisted", "returning", "ended"]
NOT_COUNTED: tuple[NotCounted, ...] = (
    "self_invite",
    "blacklisted",
    "inviter_blacklisted",
    "returning",
    "ended",
)


class Reward(BaseModel):
    """What an inviter gets on reaching the goal: any of a coupon (campaign's), points and a
    red packet (engagement's: the ledger, and the group's red-packet budget)."""

    coupon_id: KeyPart | None = Field(None, description="a coupon template of the tenant's")
    points: int = Field(0, ge=0, le=1_000_000)
    red_packet: bool = Field(False, description="a task_reward red packet (engagement's amount)")

    @model_validator(mode="after")
    def _something(self) -> Reward:
        if not (self.coupon_id or self.points or self.red_packet):
            raise ValueError("give a coupon_id, points or a red_packet")
        return self


class FissionTask(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    goal: int = Field(ge=1, le=1000, description="invitees who stay, for the reward")
    reward: Reward
    stay_hours: float = Field(
        24, ge=0, le=24 * 90, description="an invitee counts once they have stayed this long"
    )
    livecode: KeyPart = Field(description="the live code whose pool the invite codes fill")
    ends_at: AwareDatetime | None = Field(
        None, description="no codes and no counting after it (RFC 3339, with an offset)"
    )

    def stay(self) -> timedelta:
        return timedelta(hours=self.stay_hours)

    def ended(self, at: datetime) -> bool:
        return self.ends_at is not None and at >= self.ends_at


def new_invite_code() -> str:
    """`fx-` and 12 characters: 59 bits, never guessed, short enough for WeCom's join-way state
    (30 characters)."""
    return "fx-" + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def not_counted(
    *,
    inviter: str,
    invitee: str,
    joined_at: int,
    first_at: int | None,
    blacklisted: set[str],
    ended: bool,
) -> NotCounted | None:
    """Why a join through the inviter's code does not count for them, or None if it does
    (once the invitee has stayed). `first_at`: when the invitee was first seen in any group
    of the tenant, this join included (epoch µs)."""
    if ended:
        return "ended"
    if invitee == inviter:
        return "self_invite"
    if invitee in blacklisted:
        return "blacklisted"
    if inviter in blacklisted:
        return "inviter_blacklisted"
    if first_at is not None and first_at < joined_at:
        return "returning"
    return None


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
