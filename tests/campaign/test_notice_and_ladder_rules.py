"""Group notices' drift and the tier ladder's invitations, pure, table driven."""

from __future__ import annotations

from typing import Any

import pytest

from services.campaign.ladder import Ladder, Rung, invitation, invited_to
from services.campaign.notice import drift, reminder_key

NOTICES = {"福利": "群规：禁止广告", "宝妈": "宝妈群规"}


@pytest.mark.parametrize(
    ("group", "reported"),
    [
        ({"tags": ["福利"], "notice": "群规：禁止广告 "}, "none"),
        ({"tags": ["福利"], "notice": "旧群规"}, "旧群规"),
        ({"tags": ["福利"]}, None),  # never reported: unknown, listed
        ({"tags": ["other"], "notice": "x"}, "none"),  # no notice intended
        ({"tags": ["福利"], "notice": "x", "status": "dismissed"}, "none"),
        ({"tags": ["宝妈", "福利"], "notice": "宝妈群规"}, "none"),  # the first tag's
    ],
)
def test_drift(group: dict[str, Any], reported: str | None) -> None:
    found = drift({"group_id": "g", **group}, NOTICES)
    if reported == "none":
        assert found is None
    else:
        assert found is not None and found["reported"] == reported


def test_the_same_drift_is_reminded_under_one_key() -> None:
    a = drift({"group_id": "g", "tags": ["福利"], "notice": "旧"}, NOTICES)
    b = drift({"group_id": "g", "tags": ["福利"], "notice": "更旧"}, NOTICES)
    assert a and b and reminder_key(a) == reminder_key(dict(a)) != reminder_key(b)


LADDER = Ladder(
    rungs=[
        Rung(tag="鱼塘群", livecode="lc-pond"),
        Rung(tag="中转群", livecode="lc-mid", tier="buyer"),
        Rung(tag="核心群", livecode="lc-core", tier="core"),
    ]
)


@pytest.mark.parametrize(
    ("tier", "previous", "rung"),
    [
        ("buyer", "regular", "中转群"),
        ("buyer", "", "中转群"),
        ("core", "regular", "核心群"),
        ("core", "buyer", "核心群"),
        ("buyer", "core", None),  # down: no invitation
        ("regular", "", None),
        ("core", "core", None),
        ("gold", "regular", None),
    ],
)
def test_who_is_invited_where(tier: str, previous: str, rung: str | None) -> None:
    found = invited_to(LADDER, tier, previous)
    assert (found.tag if found else None) == rung


def test_a_ladder_goes_up_and_says_its_invitation() -> None:
    with pytest.raises(ValueError, match="rungs go up"):
        Ladder(rungs=[Rung(tag="a", livecode="x", tier="core"), Rung(tag="b", livecode="y")])
    text = invitation(LADDER, LADDER.rungs[1], "小明", "buyer", "https://x/scan")
    assert text == "恭喜 小明 升级为消费会员！诚邀你加入「中转群」，扫码入群：https://x/scan"
