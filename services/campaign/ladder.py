"""Group series in tiers (鱼塘群 → 中转群 → 核心群), pure: a ladder of series tags, each with
the live code that brings members into its groups and the member tier (engagement's: regular,
buyer, core) it is for. A member whose tier rises to a rung's is invited to that rung's live
code, once per rung."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from services.runtime.wellformed import KeyPart

TIERS = ("regular", "buyer", "core")
Tier = str
INVITATION = "恭喜 {nickname} 升级为{tier_name}！诚邀你加入「{series}」，扫码入群：{link}"
TIER_NAMES = {"regular": "普通会员", "buyer": "消费会员", "core": "核心会员"}


class Rung(BaseModel):
    tag: KeyPart = Field(description="the series tag of the rung's groups")
    livecode: KeyPart = Field(description="the live code that fills them")
    tier: str = Field("regular", pattern="^(regular|buyer|core)$", description="who it is for")


class Ladder(BaseModel):
    rungs: list[Rung] = Field(min_length=1, max_length=10, description="lowest first")
    invitation: str = Field(
        INVITATION,
        min_length=1,
        max_length=500,
        description="{nickname}, {tier_name}, {series}, {link}: the member's invitation",
    )

    @model_validator(mode="after")
    def _rising(self) -> Ladder:
        ranks = [TIERS.index(r.tier) for r in self.rungs]
        if ranks != sorted(ranks) or len({r.tag for r in self.rungs}) != len(self.rungs):
            raise ValueError("rungs go up: distinct tags, tiers from regular to core")
        return self


def invited_to(ladder: Ladder, tier: Tier, previous: Tier) -> Rung | None:
    """The rung a member who rose from `previous` to `tier` is invited to: the highest one for
    their new tier, if it is above what their old one reached."""
    previous = previous or "regular"  # a member without orders had none yet
    if tier not in TIERS or previous not in TIERS:
        return None
    rank, before = TIERS.index(tier), TIERS.index(previous)
    reached = [r for r in ladder.rungs if TIERS.index(r.tier) <= rank]
    if not reached or TIERS.index(reached[-1].tier) <= before:
        return None
    return reached[-1]


def invitation(ladder: Ladder, rung: Rung, nickname: str, tier: Tier, link: str) -> str:
    return (
        ladder.invitation.replace("{nickname}", nickname)
        .replace("{tier_name}", TIER_NAMES[tier])
        .replace("{series}", rung.tag)
        .replace("{link}", link)
    )
