"""Auto-reply's I/O. A tenant's rules are one document (`_id = tenant`, the rules by id and
their count), so the limit of 100 is kept by one conditional update however many operators
save at once. The consumer compiles a tenant's rules once per version of that document.

Cooldowns are a document per (tenant, group, rule), written only over the one read: of two
replicas answering the same rule in the same group at once, one replies. A cooldown records
the message it answered, so that a batch read again after a crash sends its reply again (the
same action, which delivery does not repeat) instead of finding itself cooling down."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache
from pymongo import UpdateOne

from services.engagement.activity import Tag
from services.engagement.autoreply import (
    MAX_RULES,
    Cooldown,
    Rule,
    Rules,
    Said,
    cooled,
    may_reply,
    overlaps,
)
from services.engagement.checkin import is_checkin
from services.engagement.settings import TenantSettings
from services.gen.shequn.v1 import actions_pb2, events_pb2
from services.runtime import metrics
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.envelope import answer, follow_up, occurred_at
from services.runtime.instants import stamp
from services.runtime.refusals import NotFound, OverLimit
from services.runtime.settings import Settings
from services.runtime.store import Document, Store, in_order_once

AUTOREPLIES = "autoreplies"
COOLDOWNS = "autoreply_cooldowns"
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Answered:
    """A message an auto-reply rule answers: the reply to send, the tag for the asker."""

    event: events_pb2.Event
    rule_id: str
    rule: Rule
    action: actions_pb2.Action


class AutoReplies:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, configured: TenantSettings
    ) -> None:
        self.rules = store[AUTOREPLIES]
        self.cooldowns = store[COOLDOWNS]
        self.producer, self.configured = producer, configured
        self.topic, self.events_topic = settings.topic_actions, settings.topic_events
        self._compiled: TTLCache[str, Rules] = TTLCache(10_000, _CACHE_SECONDS)

    # Configuration (the operations of the API).

    async def create(self, tenant_id: str, rule: Rule) -> tuple[str, list[dict[str, object]]]:
        rule_id = f"r-{secrets.token_hex(6)}"
        others = await self.of_tenant(tenant_id)
        await self.rules.update_one(
            {"_id": tenant_id}, {"$setOnInsert": {"count": 0, "rules": {}}}, upsert=True
        )
        done = await self.rules.update_one(
            {"_id": tenant_id, "count": {"$lt": MAX_RULES}},
            {"$set": {f"rules.{rule_id}": _stored(rule)}, "$inc": {"count": 1}},
        )
        if not done.matched_count:
            raise OverLimit(f"a tenant has at most {MAX_RULES} auto-reply rules")
        self._compiled.pop(tenant_id, None)
        return rule_id, overlaps(rule, others)

    async def replace(self, tenant_id: str, rule_id: str, rule: Rule) -> list[dict[str, object]]:
        doc = await self.rules.find_one({"_id": tenant_id}) or {}
        created = doc.get("rules", {}).get(rule_id, {}).get("created")
        done = await self.rules.update_one(
            {"_id": tenant_id, f"rules.{rule_id}": {"$exists": True}},
            {"$set": {f"rules.{rule_id}": _stored(rule, created)}},
        )
        if not done.matched_count:
            raise NotFound("no auto-reply rule of this id")
        self._compiled.pop(tenant_id, None)
        return overlaps(rule, {i: r for i, r in _rules(doc).items() if i != rule_id})

    async def delete(self, tenant_id: str, rule_id: str) -> None:
        done = await self.rules.update_one(
            {"_id": tenant_id, f"rules.{rule_id}": {"$exists": True}},
            {"$unset": {f"rules.{rule_id}": ""}, "$inc": {"count": -1}},
        )
        if not done.matched_count:
            raise NotFound("no auto-reply rule of this id")
        self._compiled.pop(tenant_id, None)

    async def of_tenant(self, tenant_id: str) -> dict[str, Rule]:
        """The tenant's rules by id, in the order they were created."""
        doc = await self.rules.find_one({"_id": tenant_id})
        return _rules(doc)

    # Answering messages.

    async def handle(self, messages: Sequence[events_pb2.Event]) -> list[Tag]:
        """Reply to a batch's messages that trigger a rule; returns the tags for the askers'
        profiles, to be written once the batch's activity has made them."""
        if not messages:
            return []
        groups = await self.configured.for_groups({(e.tenant_id, e.group_id) for e in messages})
        settings = {group: value for group, (value, _) in groups.items()}
        asked = [
            e
            for e in messages
            if not is_checkin(e.message_posted.message.text, settings[_group(e)].checkin)
        ]
        answered = await self.answer(asked, lambda e: settings[_group(e)].assistant_mentions)
        for a in answered:
            metrics.AUTOREPLIES.labels(a.action.WhichOneof("kind") or "").inc()
        await self.producer.send_many(
            outgoing(topic, group_key(a.event.tenant_id, a.event.group_id), said)
            for a in answered
            for topic, said in ((self.topic, a.action), (self.events_topic, _replied(a)))
        )
        return [
            (a.event.tenant_id, a.event.message_posted.member.id, a.rule.tag)
            for a in answered
            if a.rule.tag
        ]

    async def answer(
        self,
        messages: Sequence[events_pb2.Event],
        assistant: Callable[[events_pb2.Event], list[str]],
    ) -> list[Answered]:
        """The replies a batch's messages get, after cooldowns. `assistant(event)` names who the
        assistant is in the event's group (ids and @usernames)."""
        compiled = await self._compile(sorted({e.tenant_id for e in messages}))
        wanted: list[tuple[events_pb2.Event, str, Rule]] = []
        for e in messages:
            rules = compiled[e.tenant_id]
            said = e.message_posted
            if said.member.id in assistant(e):
                continue
            rule_id = rules.triggered(
                Said(said.message.text, list(said.message.mentions)), assistant(e)
            )
            if rule_id is not None:
                wanted.append((e, rule_id, rules.rules[rule_id]))
        if not wanted:
            return []
        replying = await self._cool(wanted)
        return [Answered(e, i, r, _reply(e, r)) for e, i, r in wanted if e.event_id in replying]

    async def _compile(self, tenants: list[str]) -> dict[str, Rules]:
        missing = [t for t in tenants if t not in self._compiled]
        if missing:
            docs = {d["_id"]: d async for d in self.rules.find({"_id": {"$in": missing}})}
            for t in missing:
                self._compiled[t] = Rules(_rules(docs.get(t)))
        return {t: self._compiled[t] for t in tenants}

    async def _cool(self, wanted: list[tuple[events_pb2.Event, str, Rule]]) -> set[str]:
        """The events whose rule may reply, with the cooldowns they start written. A group's
        rule whose final cooldown is not the last one this batch wrote lost to another replica:
        none of its replies here go."""
        ids = sorted({_cooldown_id(e, i) for e, i, _ in wanted})
        now = {d["_id"]: _as_cooldown(d) async for d in self.cooldowns.find({"_id": {"$in": ids}})}
        writers: dict[str, list[str]] = {}
        writes = []
        for e, rule_id, rule in wanted:
            key, at = _cooldown_id(e, rule_id), occurred_at(e)
            if may_reply(now.get(key), at, e.event_id):
                before, now[key] = now.get(key), cooled(at, e.event_id, rule)
                writes.append(_write(key, before, now[key]))
                writers.setdefault(key, []).append(e.event_id)
        await in_order_once(self.cooldowns, writes)
        found = self.cooldowns.find({"_id": {"$in": sorted(writers)}}, {"event_id": 1})
        final = {d["_id"]: d["event_id"] async for d in found}
        return {
            e for key, events in writers.items() if final.get(key) == events[-1] for e in events
        }


def _stored(rule: Rule, created: int | None = None) -> Document:
    return {**rule.model_dump(mode="json"), "created": created or stamp(datetime.now(UTC))}


def _rules(doc: Document | None) -> dict[str, Rule]:
    stored = (doc or {}).get("rules", {})
    ordered = sorted(stored.items(), key=lambda item: (item[1].get("created", 0), item[0]))
    return {
        i: Rule.model_validate({k: v for k, v in r.items() if k != "created"}) for i, r in ordered
    }


def _group(e: events_pb2.Event) -> tuple[str, str]:
    return e.tenant_id, e.group_id


def _cooldown_id(e: events_pb2.Event, rule_id: str) -> str:
    return f"{e.tenant_id}:{e.group_id}:{rule_id}"


def _as_cooldown(doc: Document) -> Cooldown:
    return Cooldown(datetime.fromtimestamp(doc["until"] / 1e6, UTC), doc["event_id"])


def _write(key: str, before: Cooldown | None, after: Cooldown) -> UpdateOne:
    read: Document = (
        {"until": {"$exists": False}} if before is None else {"event_id": before.event_id}
    )
    fields = {"until": stamp(after.until), "event_id": after.event_id}
    return UpdateOne({"$and": [{"_id": key}, read]}, {"$set": fields}, upsert=True)


def _replied(a: Answered) -> events_pb2.Event:
    """The reply said on the events topic, for the statistics."""
    event = follow_up(a.event, "engagement", "autoreply")
    event.auto_replied.member.CopyFrom(a.event.message_posted.member)
    event.auto_replied.rule_id = a.rule_id
    return event


def _reply(e: events_pb2.Event, rule: Rule) -> actions_pb2.Action:
    action = answer(e, "engagement", "autoreply", datetime.now(UTC))
    if rule.reply.link_card is not None:
        card = rule.reply.link_card
        action.send_link_card.title = card.title
        action.send_link_card.description = card.description
        action.send_link_card.url = str(card.url)
        action.send_link_card.image_url = str(card.image_url or "")
    else:
        action.send_text.text = rule.reply.text or ""
        action.send_text.mentions.append(e.message_posted.member.id)
    return action
