"""The moderation consumer: a batch of events in, decisions and actions out.

One pass per batch: read what the batch needs — rulesets, the members and groups concerned,
their violations in the penalty window, the blacklist, cross-group counts — with one `$in`
query per collection; judge the events in order, keeping what the batch itself changes in
memory; then write with one bulk operation per collection and produce the actions and
decisions. Violations are documents keyed by the event id and decisions are keyed by event and
rule, so a redelivered event is neither counted nor recorded twice, and the actions it leads to
have the same ids as before, which delivery does not repeat."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from services.gen.shequn.v1 import decisions_pb2, events_pb2
from services.moderation.detect import normalize
from services.moderation.detect.behaviour import FloodWatch
from services.moderation.detect.content import ContentChecks
from services.moderation.detect.ruleset import Ruleset
from services.moderation.judge import (
    MemberState,
    Ruling,
    role_of,
    rule_join,
    rule_message,
    rule_rename,
    verdict_of,
)
from services.moderation.pictures import Pictures
from services.moderation.rulesets import Rulesets
from services.runtime.bus import Outgoing, Producer, group_key
from services.runtime.consumer import Record
from services.runtime.envelope import occurred_at
from services.runtime.projections import (
    directory_changes,
    group_doc_id,
    member_doc_id,
    membership_changes,
)
from services.runtime.settings import Settings
from services.runtime.store import DUPLICATE_KEY, Document, Indexes, Store, stamp, write_latest

MEMBERS = "members"  # who is in which group: role, tags, join time
GROUPS = "groups"  # each group's name and owner: what a locked name is restored to
VIOLATIONS = "violations"  # one document per violation, keyed by the event
BLACKLIST = "blacklist"  # tenant-wide, keyed "{tenant}:{member}"
DECISIONS = "decisions"  # the audit log, keyed "{tenant}:{event}:{rule}"
CROSS_GROUP = "cross_group"  # recent groups a member posted a normalized text in
_CROSS_GROUP_MIN_LENGTH = 6  # shorter texts ("好的", "谢谢") are said everywhere

INDEXES = [
    Indexes(MEMBERS, [IndexModel([("tenant_id", ASCENDING), ("member_id", ASCENDING)])]),
    Indexes(VIOLATIONS, [IndexModel([("member", ASCENDING)])]),
    Indexes(
        DECISIONS,
        [
            IndexModel([("tenant_id", ASCENDING), ("decided_at", ASCENDING)]),
            IndexModel([("tenant_id", ASCENDING), ("group_id", ASCENDING)]),
            IndexModel([("tenant_id", ASCENDING), ("member_id", ASCENDING)]),
        ],
    ),
    Indexes(BLACKLIST, [IndexModel([("tenant_id", ASCENDING)])]),
]


def _text_key(tenant_id: str, member_id: str, text: str) -> str | None:
    """One member's one text, normalized: the unit of cross-group spam. (Many members posting
    one text is coordinated spam, a different rule.)"""
    compact = normalize.compact(text).text
    if len(compact) < _CROSS_GROUP_MIN_LENGTH:
        return None
    digest = hashlib.sha1(f"{member_id}\0{compact}".encode()).hexdigest()[:24]
    return f"{tenant_id}:{digest}"


def _person(event: events_pb2.Event) -> str:
    return f"{event.tenant_id}:{event.message_posted.member.id}"


def _state(doc: Document | None) -> MemberState | None:
    if doc is None or not doc.get("in_group"):
        return None
    joined = doc.get("joined_at")
    role = str(doc.get("role", "")).removeprefix("GROUP_ROLE_").lower()
    return MemberState(
        role=role if role in ("owner", "admin") else "member",
        tags=tuple(doc.get("tags", ())),
        joined_at=datetime.fromtimestamp(joined / 1_000_000, UTC) if joined else None,
    )


class Moderation:
    def __init__(
        self,
        store: Store,
        producer: Producer,
        settings: Settings,
        rulesets: Rulesets,
        pictures: Pictures,
    ) -> None:
        self.store, self.producer, self.settings, self.rulesets = (
            store,
            producer,
            settings,
            rulesets,
        )
        self.pictures = pictures
        self.flood = FloodWatch()

    async def handle(self, records: Sequence[Record[events_pb2.Event]]) -> None:
        events = [r.value for r in records]
        now = datetime.now(UTC)
        groups = {(e.tenant_id, e.group_id) for e in events}
        rules = await self.rulesets.for_groups(groups)

        member_ids = set()
        people = set()  # "{tenant}:{member}" whose violations and blacklist entry matter
        for e in events:
            kind = e.WhichOneof("payload")
            if kind in ("message_posted", "member_joined"):
                who = getattr(e, kind).member.id
                member_ids.add(member_doc_id(e.tenant_id, e.group_id, who))
                people.add(f"{e.tenant_id}:{who}")
            if kind == "member_joined" and e.member_joined.inviter.id:
                member_ids.add(member_doc_id(e.tenant_id, e.group_id, e.member_joined.inviter.id))
            if kind == "group_updated" and e.group_updated.actor.id:
                member_ids.add(member_doc_id(e.tenant_id, e.group_id, e.group_updated.actor.id))
        members = await self._find(MEMBERS, member_ids)
        group_docs = await self._find(GROUPS, {group_doc_id(t, g) for t, g in groups})
        blacklisted = {
            d for d, doc in (await self._find(BLACKLIST, people)).items() if doc.get("active")
        }
        window = max((r.penalties.window_days for r, _ in rules.values()), default=30)
        violations = await self._violations(people, now - timedelta(days=window))
        crossings = await self._cross_group(events, rules)
        qr_codes = await self._qr_codes(events, rules)

        rulings: list[Ruling] = []
        new_violations: list[Document] = []
        states = {k: _state(v) for k, v in members.items()}
        names = {k: str(v.get("name", "")) for k, v in group_docs.items()}
        for event in events:
            ruleset, checks = rules[(event.tenant_id, event.group_id)]
            at = occurred_at(event)
            kind = event.WhichOneof("payload")
            ruling = None
            # A blacklisted member is being removed already: no further warnings or kicks.
            if kind == "message_posted" and _person(event) not in blacklisted:
                who = event.message_posted.member
                state = states.get(member_doc_id(event.tenant_id, event.group_id, who.id))
                member = MemberState(
                    role_of(who, state),
                    tuple(who.tags) or (state.tags if state else ()),
                    state.joined_at if state else None,
                )
                verdict = verdict_of(
                    event,
                    ruleset,
                    checks,
                    member,
                    self.flood,
                    crossings.get(event.event_id, 0),
                    at,
                    qr_codes.get(event.message_posted.message.media_url, ()),
                )
                person = f"{event.tenant_id}:{who.id}"
                since = at - timedelta(days=ruleset.penalties.window_days)
                before = sum(
                    1 for eid, t in violations[person] if eid != event.event_id and since <= t <= at
                )
                ruling = rule_message(event, ruleset, verdict, before, now)
                if ruling is not None:
                    violations[person].append((event.event_id, at))
                    new_violations.append(
                        {
                            "_id": f"{person}:{event.event_id}",
                            "tenant_id": event.tenant_id,
                            "member": person,
                            "at": stamp(at),
                            "rule": ruling.decision.rule,
                        }
                    )
            elif kind == "member_joined":
                joined = event.member_joined
                person = f"{event.tenant_id}:{joined.member.id}"
                inviter = states.get(
                    member_doc_id(event.tenant_id, event.group_id, joined.inviter.id)
                )
                ruling = rule_join(event, ruleset, person in blacklisted, inviter, now)
                states[member_doc_id(event.tenant_id, event.group_id, joined.member.id)] = (
                    MemberState(role_of(joined.member, None), tuple(joined.member.tags), at)
                )
            elif kind == "member_left":
                states[
                    member_doc_id(event.tenant_id, event.group_id, event.member_left.member.id)
                ] = None
            elif kind == "group_updated":
                key = group_doc_id(event.tenant_id, event.group_id)
                actor = states.get(
                    member_doc_id(event.tenant_id, event.group_id, event.group_updated.actor.id)
                )
                ruling = rule_rename(event, ruleset, actor, names.get(key, ""), now)
                if event.group_updated.group.name and ruling is None:
                    names[key] = event.group_updated.group.name
            elif kind == "group_created":
                names[group_doc_id(event.tenant_id, event.group_id)] = (
                    event.group_created.group.name
                )
            if ruling is not None:
                rulings.append(ruling)
                if ruling.decision.blacklisted:
                    blacklisted.add(f"{event.tenant_id}:{ruling.decision.member_id}")

        await write_latest(self.store[MEMBERS], membership_changes(events))
        await write_latest(self.store[GROUPS], directory_changes(events))
        await self._insert(VIOLATIONS, new_violations)
        await self._record(rulings)
        await self.producer.send_many(self._outgoing(rulings))
        self.flood.prune(now)

    async def _find(self, collection: str, ids: set[str]) -> dict[str, Document]:
        if not ids:
            return {}
        return {
            d["_id"]: d async for d in self.store[collection].find({"_id": {"$in": sorted(ids)}})
        }

    async def _violations(
        self, people: set[str], since: datetime
    ) -> defaultdict[str, list[tuple[str, datetime]]]:
        found: defaultdict[str, list[tuple[str, datetime]]] = defaultdict(list)
        if people:
            query = {"member": {"$in": sorted(people)}, "at": {"$gte": stamp(since)}}
            async for doc in self.store[VIOLATIONS].find(query):
                event_id = doc["_id"][len(doc["member"]) + 1 :]
                found[doc["member"]].append(
                    (event_id, datetime.fromtimestamp(doc["at"] / 1e6, UTC))
                )
        return found

    async def _cross_group(
        self,
        events: list[events_pb2.Event],
        rules: dict[tuple[str, str], tuple[Ruleset, ContentChecks]],
    ) -> dict[str, int]:
        """For each message whose normalized text is long enough: in how many groups of the
        tenant it was posted within the window. Shared through MongoDB, so replicas agree."""
        seen: dict[str, list[tuple[events_pb2.Event, str]]] = defaultdict(list)
        for e in events:
            if e.WhichOneof("payload") == "message_posted":
                posted = e.message_posted
                key = _text_key(e.tenant_id, posted.member.id, posted.message.text)
                if key:
                    seen[key].append((e, key))
        if not seen:
            return {}
        collection = self.store[CROSS_GROUP]
        # Entries are "group|time|event" strings: NX-27017 turns pushed sub-documents into
        # JSON strings on the second push, so plain strings are what both servers keep alike.
        await collection.bulk_write(
            [
                UpdateOne(
                    {"_id": key},
                    {
                        "$push": {
                            "posts": {
                                "$each": [
                                    f"{e.group_id}|{stamp(occurred_at(e))}|{e.event_id}"
                                    for e, _ in posts
                                ],
                                "$slice": -200,
                            }
                        }
                    },
                    upsert=True,
                )
                for key, posts in seen.items()
            ],
            ordered=False,
        )
        docs = {d["_id"]: d async for d in collection.find({"_id": {"$in": list(seen)}})}
        counts = {}
        for key, posts in seen.items():
            entries = [p.split("|") for p in docs.get(key, {}).get("posts", [])]
            for event, _ in posts:
                ruleset = rules[(event.tenant_id, event.group_id)][0]
                window = ruleset.cross_group.window_seconds * 1_000_000
                at = stamp(occurred_at(event))
                groups = {g for g, t, _ in entries if at - window <= int(t) <= at}
                counts[event.event_id] = len(groups)
        return counts

    async def _qr_codes(
        self,
        events: list[events_pb2.Event],
        rules: dict[tuple[str, str], tuple[Ruleset, ContentChecks]],
    ) -> dict[str, tuple[str, ...]]:
        """The QR codes in the pictures of the batch's messages, where the group checks ads."""
        if not self.settings.picture_qr_codes:
            return {}
        return await self.pictures.qr_codes(
            e
            for e in events
            if e.WhichOneof("payload") == "message_posted"
            and e.message_posted.message.kind == events_pb2.MESSAGE_KIND_IMAGE
            and e.message_posted.message.media_url
            and rules[(e.tenant_id, e.group_id)][0].ads
        )

    async def _insert(self, collection: str, docs: list[Document]) -> None:
        if not docs:
            return
        try:
            await self.store[collection].insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # already there: a redelivery
            if any(e["code"] != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def _record(self, rulings: list[Ruling]) -> None:
        if not rulings:
            return
        await self._insert(DECISIONS, [_audit(r.decision) for r in rulings])
        bans = [r.decision for r in rulings if r.decision.blacklisted]
        if bans:
            await self.store[BLACKLIST].bulk_write(
                [
                    UpdateOne(
                        {"_id": f"{d.tenant_id}:{d.member_id}"},
                        {
                            "$set": {
                                "active": True,
                                "decision_id": d.decision_id,
                                "rule": d.rule,
                                "group_id": d.group_id,
                                "since": stamp(d.decided_at.ToDatetime(UTC)),
                            },
                            "$setOnInsert": {"tenant_id": d.tenant_id, "member_id": d.member_id},
                        },
                        upsert=True,
                    )
                    for d in bans
                ],
                ordered=False,
            )

    def _outgoing(self, rulings: list[Ruling]) -> list[Outgoing]:
        out = []
        for ruling in rulings:
            d = ruling.decision
            key = group_key(d.tenant_id, d.group_id)
            out += [
                Outgoing(self.settings.topic_actions, key, a.SerializeToString())
                for a in ruling.actions
            ]
            out.append(Outgoing(self.settings.topic_decisions, key, d.SerializeToString()))
        return out


def _audit(d: decisions_pb2.Decision) -> Document:
    return {
        "_id": f"{d.tenant_id}:{d.decision_id}",
        "tenant_id": d.tenant_id,
        "group_id": d.group_id,
        "member_id": d.member_id,
        "event_id": d.event_id,
        "rule": d.rule,
        "check": d.check,
        "evidence": d.evidence,
        "span": [d.span_start, d.span_end] if d.span_start >= 0 else None,
        "penalty": decisions_pb2.Decision.Penalty.Name(d.penalty).removeprefix("PENALTY_").lower(),
        "violation_number": d.violation_number,
        "blacklisted": d.blacklisted,
        "decided_at": stamp(d.decided_at.ToDatetime(UTC)),
        "explanation": d.explanation_json,
        "appeal": None,
    }
