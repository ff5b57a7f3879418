"""Welcome (入群欢迎语), pure: the settings, which window a join belongs to, and the welcome a
closed window gets.

A window opens with the first join of a group not inside the last window and lasts
`combine_window_seconds`; every join in it, in whatever order the joins arrive, belongs to it.
When it closes, `combine_min_joins` or more newcomers get one welcome naming them all, fewer
get one each. Members removed since they joined (kicked on arrival, or gone) get none."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, field_validator

from services.runtime.wellformed import KeyPart

PLACEHOLDERS = ("nickname", "group_name", "rules", "campaign_link")
NICKNAME = "%NICKNAME%"  # where WeCom's group welcome template names the newcomer
_NAMES_SHOWN = 20  # a combined welcome names this many, then says how many more


class WelcomeRules(BaseModel):
    enabled: bool = True
    template: str = Field(
        "欢迎 {nickname} 加入{group_name}！{rules}",
        min_length=1,
        max_length=1000,
        description="placeholders: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
    )
    rules: str = Field("", max_length=1000, description="{rules}; empty: the group's notice")
    campaign_link: str = Field("", max_length=500, description="{campaign_link}")
    combine_window_seconds: int = Field(60, ge=0, le=3600)
    combine_min_joins: int = Field(3, ge=2, le=100)
    hold_seconds: int = Field(
        2, ge=0, le=60, description="wait at least this long after a join (moderation decides)"
    )
    clean: bool = Field(
        False, description="delete the group's earlier welcomes with the next (clean welcome)"
    )
    entry_coupon: KeyPart | None = Field(
        None,
        description="a coupon of campaign's (POST /v1/coupons) that each newcomer welcomed is"
        " given, once per member (进群就送优惠券)",
    )

    @field_validator("template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise ValueError(f"not a template: {exc}") from None
        for name in fields:
            if name not in PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                raise ValueError(f"unknown placeholder {{{name}}}: use {known}")
        return template


@dataclass(frozen=True)
class Head:
    """A group's latest window: where the next joins go."""

    window_id: str
    start: datetime
    end: datetime


def place(head: Head | None, at: datetime, window: timedelta) -> tuple[datetime, bool]:
    """The start of the window a join at `at` belongs to, and whether that window is new and
    becomes the group's head. A join a little earlier than the head's start (out of order)
    joins it; one from before an earlier window gets a window of its own."""
    if head is None or at >= head.end:
        return at, True
    if at >= head.start - window:
        return head.start, False
    return at, False


@dataclass(frozen=True)
class Newcomer:
    member_id: str
    name: str
    event_id: str
    at: datetime


@dataclass(frozen=True)
class Welcome:
    """One message: its key (the window's, or the window's and the member's), text, mentions."""

    key: str
    text: str
    mentions: tuple[str, ...]
    cause_event_id: str


def welcomes(
    window_id: str,
    joins: Sequence[Newcomer],
    removed: Mapping[str, datetime],
    rules: WelcomeRules,
    group_name: str,
    notice: str = "",
) -> list[Welcome]:
    """What a closed window sends. `removed`: when each member last left or was kicked."""
    seen: dict[str, Newcomer] = {}
    for j in sorted(joins, key=lambda j: (j.at, j.event_id)):
        if j.member_id not in seen and not (
            j.member_id in removed and removed[j.member_id] >= j.at
        ):
            seen[j.member_id] = j
    staying = list(seen.values())
    if not staying:
        return []
    if len(staying) >= rules.combine_min_joins:
        shown = "、".join(n.name or n.member_id for n in staying[:_NAMES_SHOWN])
        if len(staying) > _NAMES_SHOWN:
            shown += f" 等 {len(staying)} 位新朋友"
        text = render(rules, shown, group_name, notice)
        mentions = tuple(n.member_id for n in staying)
        return [Welcome(window_id, text, mentions, staying[0].event_id)]
    return [
        Welcome(
            f"{window_id}:{n.member_id}",
            render(rules, n.name or n.member_id, group_name, notice),
            (n.member_id,),
            n.event_id,
        )
        for n in staying
    ]


def render(rules: WelcomeRules, nickname: str, group_name: str, notice: str = "") -> str:
    values = {
        "nickname": nickname,
        "group_name": group_name,
        "rules": rules.rules or notice,
        "campaign_link": rules.campaign_link,
    }
    return rules.template.format_map(values).strip()


def wecom_template(
    tenant: WelcomeRules, group: WelcomeRules, group_name: str, notice: str
) -> tuple[str, bool]:
    """The group welcome template that is a WeCom group's welcome (WeCom names the newcomer
    itself), and whether it is the tenant's: a group whose welcome reads as the tenant's
    shares its template; one whose text is its own (an override, its name) has its own."""
    text = render(group, NICKNAME, group_name, notice)
    return text, text == render(tenant, NICKNAME, "", "")
