"""Keyword auto-reply (自动回复), pure: a tenant's rules, which of them a message triggers, when a
rule is cooling down in a group, and which rules overlap. Keywords are matched in normalized
form (`runtime.text`: full-width, traditional, case and what is put between the characters
are undone) with the matcher moderation uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field, HttpUrl, field_validator, model_validator

from services.runtime.text import normalize
from services.runtime.text.words import Words

MAX_RULES = 100
MAX_KEYWORDS = 10


class LinkCard(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    url: HttpUrl
    image_url: HttpUrl | None = None


class Reply(BaseModel):
    text: str | None = Field(None, min_length=1, max_length=2000)
    link_card: LinkCard | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Reply:
        if (self.text is None) == (self.link_card is None):
            raise ValueError("a reply is either {text} or {link_card}")
        return self


Keyword = Annotated[str, Field(min_length=1, max_length=50)]


class Rule(BaseModel):
    keywords: list[Keyword] = Field(
        min_length=1, max_length=MAX_KEYWORDS, description=f"at most {MAX_KEYWORDS}"
    )
    match: Literal["contains", "exact"] = "contains"
    mention_only: bool = Field(False, description="only when the assistant is @mentioned")
    cooldown_seconds: int = Field(60, ge=0, le=86_400, description="per rule per group")
    reply: Reply
    tag: str | None = Field(None, min_length=1, max_length=50, description="given to the asker")

    @field_validator("keywords")
    @classmethod
    def _matchable(cls, keywords: list[str]) -> list[str]:
        for word in keywords:
            if not normalize.keyword(word):
                raise ValueError(f"{word!r} has no letters or digits to match")
        return keywords

    def normalized(self) -> set[str]:
        return {normalize.keyword(k) for k in self.keywords}


@dataclass(frozen=True)
class Said:
    """A message as auto-reply sees it."""

    text: str
    mentions: Sequence[str]


class Rules:
    """A tenant's rules compiled into one matcher (rule id → rule, in the order created)."""

    def __init__(self, rules: dict[str, Rule]) -> None:
        self.rules = rules
        self.words: Words[str] = Words(
            (keyword, rule.match == "exact", rule_id)
            for rule_id, rule in rules.items()
            for keyword in rule.keywords
        )
        self.order = {rule_id: i for i, rule_id in enumerate(rules)}

    def triggered(self, said: Said, assistant: Iterable[str]) -> str | None:
        """The rule a message triggers: of those it matches, the one whose keyword comes first
        in the message, then the one created first. One reply per message, never a volley."""
        if not self.rules or not said.text:
            return None
        mentioned = not set(said.mentions).isdisjoint(assistant)
        found = [
            f
            for f in self.words.find(normalize.compact(said.text))
            if mentioned or not self.rules[f.tag].mention_only
        ]
        if not found:
            return None
        return min(found, key=lambda f: (f.start, self.order[f.tag])).tag


@dataclass(frozen=True)
class Cooldown:
    """A rule's last reply in a group: until when it is quiet, and the message it answered."""

    until: datetime
    event_id: str


def may_reply(last: Cooldown | None, at: datetime, event_id: str) -> bool:
    """A rule replies when its cooldown in the group is over; a message it answered before (a
    redelivery) is answered again, with the same action, which delivery does not repeat."""
    return last is None or last.event_id == event_id or at >= last.until


def cooled(at: datetime, event_id: str, rule: Rule) -> Cooldown:
    return Cooldown(at + timedelta(seconds=rule.cooldown_seconds), event_id)


def overlaps(rule: Rule, others: dict[str, Rule]) -> list[dict[str, object]]:
    """The other rules that some message would trigger together with this one: a keyword of
    one rule, sent as a message, matches the other rule (contains: it holds the other's
    keyword; exact: it is the other's keyword)."""
    mine = rule.normalized()
    found: list[dict[str, object]] = []
    for rule_id, other in others.items():
        theirs = other.normalized()
        shared = sorted(
            {a for a in mine for b in theirs if _triggers(a, b, other.match)}
            | {b for b in theirs for a in mine if _triggers(b, a, rule.match)}
        )
        if shared:
            found.append({"rule_id": rule_id, "keywords": shared})
    return found


def _triggers(message: str, keyword: str, match: str) -> bool:
    return message == keyword if match == "exact" else keyword in message
