"""Group handover (离职继承), pure: a staff member has left, and their groups pass to a colleague.

On WeCom one `groupchat/transfer` call takes at most 100 groups, and a person's groups pass at
most 300 a day: a handover goes in batches, each of one platform, WeCom's within the day's room,
the rest on the following days. Groups WeCom refuses (its failed list) are tried again in a
later batch, up to `attempts` tries, then reported failed with WeCom's reason. Elsewhere a
batch changes the owner where the platform lets a bot (the sim platform), or is reported
unsupported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from services.runtime.wellformed import KeyPart

BATCH_MOST = 100  # groups a transfer call takes (WeCom's limit; the others' too, for one size)
MAX_GROUPS = 5000
WECOM = "PLATFORM_WECOM"
State = Literal["pending", "sending", "transferred", "failed"]


class Handover(BaseModel):
    from_owner: KeyPart = Field(description="the staff member who left")
    to_owner: KeyPart = Field(description="the colleague who takes their groups")
    handover_id: KeyPart | None = Field(
        None, description="the client's id: asking again with it answers the first handover"
    )
    groups: list[KeyPart] | None = Field(
        None,
        max_length=MAX_GROUPS,
        description="the groups to pass; none: every active group the leaver owns",
    )

    @model_validator(mode="after")
    def _two_people(self) -> Handover:
        if self.from_owner == self.to_owner:
            raise ValueError("to_owner must be someone else")
        return self


def next_batch(
    groups: Mapping[str, Mapping[str, Any]], wecom_room: int
) -> tuple[str, list[str]] | None:
    """The platform and groups of the next batch: pending groups of one platform (by group id),
    at most `BATCH_MOST`, on WeCom at most the day's room; None when nothing can go today."""
    pending = sorted(
        (g["group_id"], g["platform"]) for g in groups.values() if g["state"] == "pending"
    )
    others = [(g, p) for g, p in pending if p != WECOM]
    if others:
        platform = others[0][1]
        return platform, [g for g, p in others if p == platform][:BATCH_MOST]
    chosen = [g for g, _ in pending][: min(BATCH_MOST, wecom_room)]
    return (WECOM, chosen) if chosen else None


def after_delivery(
    entry: Mapping[str, Any], status: str, refused: Mapping[str, str], reason: str, attempts: int
) -> dict[str, Any]:
    """A group's entry after its batch's result: transferred, or pending again (tried fewer
    than `attempts` times), or failed with the reason. `status` is the batch action's:
    delivered (then `refused` names the groups the platform refused), unsupported or failed."""
    group_id = entry["group_id"]
    if status == "delivered" and group_id not in refused:
        return {**entry, "state": "transferred", "reason": ""}
    why = refused.get(group_id, reason)
    if status != "unsupported" and entry["attempts"] < attempts:
        return {**entry, "state": "pending", "reason": why}
    return {**entry, "state": "failed", "reason": why}
