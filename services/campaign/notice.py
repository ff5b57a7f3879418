"""Group notices (群公告), pure: the notice a series tag's groups should show (the rules, the
current campaign), and a group whose reported notice differs from it has drifted. A group whose
notice has never been reported is unknown, not drifted: nobody is reminded of it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

REMINDER = "群「{group}」的群公告与设定的不一致，请更新为：\n{notice}"


class Notice(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="the group notice (群公告)")


def intended(group: Mapping[str, Any], notices: Mapping[str, str]) -> tuple[str, str] | None:
    """(tag, notice) the group should show: its first tag (by name) with a notice."""
    for tag in sorted(group.get("tags") or []):
        if tag in notices:
            return tag, notices[tag]
    return None


def drift(group: Mapping[str, Any], notices: Mapping[str, str]) -> dict[str, Any] | None:
    """The group's drift from its intended notice, or None (no notice intended, or shown)."""
    wanted = intended(group, notices)
    if wanted is None or group.get("status") == "dismissed":
        return None
    reported = group.get("notice")
    if reported is not None and reported.strip() == wanted[1].strip():
        return None
    return {
        "group_id": group["group_id"],
        "name": group.get("name", ""),
        "owner_id": group.get("owner_id", ""),
        "tag": wanted[0],
        "intended": wanted[1],
        "reported": reported,  # None: never reported
    }


def reminder_key(found: Mapping[str, Any]) -> str:
    """The same drift reminds once: the key of what was intended and what was reported."""
    both = f"{found['intended']}\0{found['reported']}".encode()
    return hashlib.sha256(both).hexdigest()[:16]
