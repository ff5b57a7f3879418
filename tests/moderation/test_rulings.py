"""The moderation consumer's passes without I/O, and its memory state. A batch judged again —
after a retry, a crash or a refused commit — must come out exactly as the first time, since its
actions may already have left and delivery takes each action id once."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.moderation.__main__ import build
from services.moderation.checks import CheckRequest, check
from services.moderation.detect.behaviour import FloodWatch
from services.moderation.detect.content import ContentChecks
from services.moderation.detect.ruleset import Flood, Ruleset
from services.moderation.examine import message_of
from services.moderation.judge import MemberState
from services.moderation.ladder import Case, rule_cases
from services.moderation.pipeline import Moderation
from services.runtime.auth import Authenticator
from services.runtime.bus import Producer
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.conftest import Stack

T0 = datetime(2026, 11, 22, 8, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)


def _ad(event_id: str, at: datetime) -> events_pb2.Event:
    event = events_pb2.Event(event_id=event_id, tenant_id="t", group_id="g")
    event.occurred_at.FromDatetime(at)
    event.message_posted.member.CopyFrom(common_pb2.Member(id="m", name="小李"))
    event.message_posted.message.text = "加微信 vx: shop_8888 领福利"
    return event


def _outcome(
    ruleset: Ruleset, stored: dict[str, datetime]
) -> tuple[list[tuple[str, int, list[str]]], dict[str, datetime]]:
    checks = ContentChecks(ruleset)
    cases = []
    for i, at in enumerate((T0, T0 + timedelta(seconds=30))):
        event = _ad(f"e{i}", at)
        request = CheckRequest(
            "t:g", event.event_id, at, message_of(event), "m", MemberState(), ruleset, checks, 0,
            FloodWatch(),
        )  # fmt: skip
        verdict = check(request)
        cases.append(Case(event, ruleset, verdict))
    rulings, written = rule_cases(cases, set(), defaultdict(dict, {"t:m": dict(stored)}), NOW)
    outcome = [
        (r.decision.decision_id, r.decision.violation_number, [a.action_id for a in r.actions])
        for r in rulings
    ]
    return outcome, written["t:m"]


def test_a_batch_judged_again_after_its_violations_were_stored_rules_the_same() -> None:
    ruleset = Ruleset.model_validate({"penalties": {"kick_at": 3}})
    first, stored = _outcome(ruleset, {})
    assert [(d, n) for d, n, _ in first] == [("e0:ad", 1), ("e1:ad", 2)]
    again, _ = _outcome(ruleset, stored)
    assert again == first, "the second ad stays the second violation: nobody is kicked"


def test_a_message_found_flooding_keeps_its_answer_when_judged_again() -> None:
    watch, rule = FloodWatch(), Flood()
    answers = [
        watch.observe("t:g", "m", f"e{i}", T0 + timedelta(seconds=i), f"第{i}条", rule).hit
        for i in range(rule.max_messages + 1)
    ]
    assert answers == [False] * rule.max_messages + [True]
    last = f"e{rule.max_messages}"
    at = T0 + timedelta(seconds=rule.max_messages)
    again = watch.observe("t:g", "m", last, at, f"第{rule.max_messages}条", rule)
    assert again.hit and again.findings[0].detail.startswith(f"{rule.max_messages + 1} messages")


async def test_partitions_taken_away_drop_moderations_memory_state(stack: Stack) -> None:
    """The consumer's revoked hook is wired to what moderation keeps in memory: cached
    memberships and flood windows would go stale while another consumer holds the groups."""
    settings = Settings(kafka_bootstrap=stack.kafka, mongo_url=stack.mongo)
    store = Store(settings.mongo_url, "shequn_test")
    rt = Runtime(settings, store, Producer(settings), Authenticator(store.client, "shequn_", 30))
    [consumer] = build(rt).consumers
    moderation = consumer.revoked.__self__  # type: ignore[attr-defined]
    assert isinstance(moderation, Moderation)
    moderation.memberships["t:g:m"] = MemberState()
    moderation.group_names["t:g"] = "福利群"
    moderation.flood.observe("t:g", "m", "e-1", T0, "早", Flood())
    consumer.revoked([])
    assert not moderation.memberships and not moderation.group_names
    assert len(moderation.flood) == 0
    await store.client.close()
