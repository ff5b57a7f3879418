"""The story a scenario is written into: each member's plan in a group (`Life`), and the events
and actions as they are told, with ids that follow from the seed and a counter (`Story`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random
from typing import Any

from services.devtools.demo.cast import Body, Group, Person, event, text_message


@dataclass
class Life:
    """One member's plan in one group before it becomes events."""

    person: Person
    times: list[datetime]  # sorted; the first is the join
    spammer: bool = False
    kicked: bool = False  # by an admin, in the events (one spammer is left to the operator)
    abusive: bool = False
    quits: bool = False


@dataclass
class Story:
    seed: int
    rng: Random
    end: datetime
    events: list[tuple[datetime, int, Body]] = field(default_factory=list)
    actions: list[Body] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)

    def next_id(self, kind: str = "") -> str:
        self.counters[kind] += 1
        return f"demo-{self.seed}-{kind}{self.counters[kind]}"

    def emit(self, kind: str, group: Group, at: datetime, /, **fields: Any) -> datetime:
        body = event(self.next_id(), kind, group, at, **fields)
        self.events.append((at, len(self.events), body))
        return at

    def say(
        self, group: Group, who: Person, at: datetime, text: str, mentions: list[str] | None = None
    ) -> str:
        message_id = self.next_id("m")
        message = text_message(message_id, text, mentions)
        self.emit("message_posted", group, at, member=who.ref(), message=message)
        return message_id

    def act(self, kind: str, group: Group, **fields: Any) -> Body:
        body = {"type": kind, "group_id": group.id, "platform": "sim", **fields}
        body["action_id"] = self.next_id("a")
        self.actions.append(body)
        return body

    def later(self, at: datetime, low: int, high: int) -> datetime:
        """`at` plus low..high seconds, but within the week (a reply to a late-night question
        does not spill into today, which may not have come that far yet)."""
        return min(
            at + timedelta(seconds=self.rng.randint(low, high)), self.end - timedelta(seconds=60)
        )
