"""Auto-reply without I/O: which rule a message triggers, cooldowns, overlaps, the limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.engagement.autoreply import Cooldown, Rule, Rules, Said, may_reply, overlaps

AT = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


def rule(*keywords: str, **fields: object) -> Rule:
    return Rule.model_validate({"keywords": list(keywords), "reply": {"text": "好"}, **fields})


RULES = Rules(
    {
        "price": rule("价格", "多少钱"),
        "hours": rule("营业时间", match="exact"),
        "human": rule("人工", mention_only=True),
        "wifi": rule("wifi"),
    }
)
ASSISTANT = ["shequn-bot"]


@pytest.mark.parametrize(
    ("text", "mentions", "expected"),
    [
        ("请问这个多少钱？", [], "price"),
        ("請問 價 格", [], "price"),  # traditional, with spaces between: normalized first
        ("营业时间", [], "hours"),
        ("营业时间是几点", [], None),  # exact: only the whole message
        ("转人工", [], None),  # only when the assistant is @mentioned
        ("转人工", ["shequn-bot"], "human"),
        ("转人工", ["someone"], None),
        ("WIFI密码", [], "wifi"),
        ("mywifi", [], None),  # ASCII words match as whole words
        ("人工客服多少钱", ["shequn-bot"], "human"),  # the keyword that comes first wins
        ("", [], None),
    ],
)
def test_a_message_triggers_the_rule_whose_keyword_it_holds_first(
    text: str, mentions: list[str], expected: str | None
) -> None:
    assert RULES.triggered(Said(text, mentions), ASSISTANT) == expected


def test_a_rule_waits_out_its_cooldown_but_answers_a_redelivered_message_again() -> None:
    last = Cooldown(AT + timedelta(seconds=60), "ev-1")
    assert may_reply(None, AT, "ev-1")
    assert may_reply(last, AT, "ev-1"), "the message it answered, read again"
    assert not may_reply(last, AT + timedelta(seconds=59), "ev-2")
    assert may_reply(last, AT + timedelta(seconds=60), "ev-2")


def test_overlapping_rules_are_named_with_the_keywords_they_share() -> None:
    others = {"price": rule("价格"), "hours": rule("营业时间", match="exact"), "x": rule("发货")}
    found = overlaps(rule("价格表", "营业时间"), others)
    assert found == [
        {"rule_id": "price", "keywords": ["价格表"]},  # 价格表 holds 价格
        {"rule_id": "hours", "keywords": ["营业时间"]},
    ]
    assert overlaps(rule("营业时间段"), {"hours": others["hours"]}) == []  # exact: not held


def test_rules_refuse_more_than_ten_keywords_and_what_cannot_be_matched() -> None:
    with pytest.raises(ValidationError, match="at most 10"):
        rule(*[f"词{i}" for i in range(11)])
    with pytest.raises(ValidationError, match="no letters or digits"):
        rule("？！")
    with pytest.raises(ValidationError, match="either"):
        Rule.model_validate({"keywords": ["a"], "reply": {}})
