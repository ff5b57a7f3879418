"""Handover batches (`handover.py`), table driven: one platform a batch, at most 100 groups,
WeCom's within the day's room; and what a batch's result makes of each group."""

from __future__ import annotations

from typing import Any

import pytest

from services.campaign.handover import Handover, after_delivery, next_batch


def _groups(*specs: tuple[str, str, str]) -> dict[str, dict[str, Any]]:
    return {g: {"group_id": g, "platform": p, "state": s, "attempts": 1} for g, p, s in specs}


WECOM, SIM = "PLATFORM_WECOM", "PLATFORM_SIM"
MANY = _groups(*((f"w{i:03d}", WECOM, "pending") for i in range(250)))


@pytest.mark.parametrize(
    ("groups", "room", "batch"),
    [
        (MANY, 300, (WECOM, [f"w{i:03d}" for i in range(100)])),
        (MANY, 30, (WECOM, [f"w{i:03d}" for i in range(30)])),
        (MANY, 0, None),
        (_groups(("w1", WECOM, "pending"), ("s1", SIM, "pending")), 0, (SIM, ["s1"])),
        (_groups(("w1", WECOM, "transferred"), ("w2", WECOM, "sending")), 300, None),
    ],
)
def test_the_next_batch(groups: Any, room: int, batch: Any) -> None:
    assert next_batch(groups, room) == batch


@pytest.mark.parametrize(
    ("status", "refused", "attempts", "state", "reason"),
    [
        ("delivered", {}, 1, "transferred", ""),
        ("delivered", {"g": "wecom -1: busy"}, 1, "pending", "wecom -1: busy"),
        ("delivered", {"g": "wecom -1: busy"}, 3, "failed", "wecom -1: busy"),
        ("failed", {}, 1, "pending", "timeout"),
        ("unsupported", {}, 1, "failed", "timeout"),
    ],
)
def test_a_group_after_its_batch(
    status: str, refused: dict[str, str], attempts: int, state: str, reason: str
) -> None:
    entry = {"group_id": "g", "platform": WECOM, "state": "sending", "attempts": attempts}
    found = after_delivery(entry, status, refused, "timeout", attempts=3)
    assert (found["state"], found["reason"]) == (state, reason)


def test_a_handover_is_between_two_people() -> None:
    with pytest.raises(ValueError, match="someone else"):
        Handover(from_owner="s-1", to_owner="s-1")
