"""Which joins through an invite code count for the inviter (`fission.not_counted`), table
driven: each case one reason, in the order the rules are asked."""

from __future__ import annotations

import pytest

from services.campaign.fission import FissionTask, new_invite_code, not_counted, rate

JOIN = 1_000_000_000
CASES = [
    # inviter, invitee, first seen, blacklisted, ended, → reason
    ("a", "b", JOIN, set(), False, None),
    ("a", "b", None, set(), False, None),
    ("a", "a", JOIN, set(), False, "self_invite"),
    ("a", "b", JOIN, {"b"}, False, "blacklisted"),
    ("a", "b", JOIN, {"a"}, False, "inviter_blacklisted"),
    ("a", "b", JOIN - 1, set(), False, "returning"),
    ("a", "b", JOIN, set(), True, "ended"),
    ("a", "a", JOIN - 1, {"a"}, True, "ended"),
]


@pytest.mark.parametrize(("inviter", "invitee", "first", "listed", "ended", "reason"), CASES)
def test_why_a_join_does_not_count(
    inviter: str, invitee: str, first: int | None, listed: set[str], ended: bool, reason: str
) -> None:
    found = not_counted(
        inviter=inviter, invitee=invitee, joined_at=JOIN, first_at=first,
        blacklisted=listed, ended=ended,
    )  # fmt: skip
    assert found == reason


def test_invite_codes_fit_wecoms_join_way_state() -> None:
    codes = {new_invite_code() for _ in range(1000)}
    assert len(codes) == 1000 and all(len(c) <= 30 and c.startswith("fx-") for c in codes)


def test_a_task_needs_a_reward_and_rates_divide_safely() -> None:
    with pytest.raises(ValueError, match="coupon_id, points or a red_packet"):
        FissionTask.model_validate({"name": "x", "goal": 1, "reward": {}, "livecode": "lc"})
    assert (rate(1, 3), rate(1, 0)) == (0.3333, 0.0)
