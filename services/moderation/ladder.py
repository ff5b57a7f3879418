"""The second pass over a batch, in order: the penalty ladder and the blacklist, counting what
the batch itself adds. Plain code: the cases the first pass made and the state read for them
in, the rulings and the violations to remember out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.gen.shequn.v1 import events_pb2
from services.moderation.detect.ruleset import Ruleset
from services.moderation.detect.verdict import Verdict
from services.moderation.judge import MemberState, Ruling, rule_join, rule_message
from services.runtime.envelope import occurred_at


@dataclass
class Case:
    """One event as the first pass saw it, with the state as of that event in the batch."""

    event: events_pb2.Event
    ruleset: Ruleset
    verdict: Verdict | None = None  # message_posted
    inviter: MemberState | None = None  # member_joined
    ruling: Ruling | None = None  # decided in the first pass: a rename needs no member record

    @property
    def person(self) -> str:
        """The member whose record (blacklist, violations) the ruling needs, or ""."""
        kind = self.event.WhichOneof("payload")
        if kind == "member_joined":
            return f"{self.event.tenant_id}:{self.event.member_joined.member.id}"
        if self.verdict is not None and self.verdict.violation is not None:
            return f"{self.event.tenant_id}:{self.event.message_posted.member.id}"
        return ""


def rule_cases(
    cases: list[Case],
    blacklisted: set[str],
    violations: defaultdict[str, dict[str, datetime]],
    now: datetime,
) -> tuple[list[Ruling], dict[str, dict[str, datetime]]]:
    """The second pass, in order: the penalty ladder and the blacklist, counting what the
    batch itself adds. Returns the rulings and the violations to remember, by member."""
    rulings: list[Ruling] = []
    new_violations: defaultdict[str, dict[str, datetime]] = defaultdict(dict)
    removed: set[tuple[str, str]] = set()  # (group, person) this batch kicks
    for case in cases:
        event, ruling = case.event, case.ruling
        # A blacklisted member is judged like anyone (the kick may have failed: WeCom cannot
        # kick; or the group has the blacklist off): only one this batch is removing already
        # is not warned or kicked again for the rest of it.
        being_removed = (event.group_id, case.person) in removed
        if case.verdict is not None and case.person and not being_removed:
            at = occurred_at(event)
            since = at - timedelta(days=case.ruleset.penalties.window_days)
            # Keyed by event: a redelivered batch finds its own violations already stored.
            before = sum(
                1
                for eid, t in violations[case.person].items()
                if eid != event.event_id and since <= t <= at
            )
            ruling = rule_message(event, case.ruleset, case.verdict, before, now)
            if ruling is not None:
                violations[case.person][event.event_id] = at
                new_violations[case.person][event.event_id] = at
        elif event.WhichOneof("payload") == "member_joined":
            ruling = rule_join(event, case.ruleset, case.person in blacklisted, case.inviter, now)
        if ruling is not None:
            rulings.append(ruling)
            person = f"{event.tenant_id}:{ruling.decision.member_id}"
            if ruling.decision.blacklisted:
                blacklisted.add(person)
            if any(a.WhichOneof("kind") == "kick_member" for a in ruling.actions):
                removed.add((event.group_id, person))
    return rulings, new_violations
