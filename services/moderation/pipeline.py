"""The moderation consumer: a batch of events in, decisions and actions out.

One round of reads per batch: the members, groups and cross-group records concerned, the
blacklist entries and violation histories of its posters and newcomers (all `_id` lookups,
together) while its pictures download. Then every message gets its verdict and the penalty
ladder is applied, in order, counting what the batch itself adds. The rulings are recorded
(violation history, audit log, blacklist) before their actions and decisions leave; the rest of
the state after, so the database is not on the path of a batch without rulings. Violations are
keyed by event and decisions by event and rule, so a redelivered event is neither counted nor
recorded twice, and the actions it leads to have the same ids as before, which delivery does
not repeat."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from aiokafka import TopicPartition
from cachetools import LRUCache
from pymongo import ASCENDING, IndexModel, UpdateOne

from services.gen.shequn.v1 import decisions_pb2, events_pb2
from services.moderation import crossgroup
from services.moderation.crossgroup import CROSS_GROUP
from services.moderation.detect.behaviour import FloodWatch
from services.moderation.detect.content import ContentChecks
from services.moderation.detect.ruleset import Ruleset
from services.moderation.examine import (
    audit_entry,
    examine,
    group_name,
    member_state,
    members_concerned,
    people_of,
)
from services.moderation.judge import MemberState, Ruling
from services.moderation.ladder import rule_cases
from services.moderation.pictures import Pictures
from services.moderation.rulesets import Rulesets
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.consumer import Record
from services.runtime.instants import stamp
from services.runtime.projections import (
    directory_changes,
    group_doc_id,
    membership_changes,
)
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, insert_new, write_latest

T = TypeVar("T")

MEMBERS = "members"  # who is in which group: role, tags, join time
GROUPS = "groups"  # each group's name and owner: what a locked name is restored to
VIOLATIONS = "violation_history"  # per member of a tenant: recent violations, "{event}|{time}"
BLACKLIST = "blacklist"  # tenant-wide, keyed "{tenant}:{member}"
DECISIONS = "decisions"  # the audit log, keyed "{tenant}:{event}:{rule}"
_KNOWN_KEPT = 50_000  # memberships, and as many group names, kept in memory
# What judging reads of their documents (`examine.member_state`, `examine.group_name`).
_JUDGED = {MEMBERS: {"in_group": 1, "joined_at": 1, "role": 1, "tags": 1}, GROUPS: {"name": 1}}
# Pruning flood windows changes no verdict, only memory, and scans every member watched: at most
# this often, not after every batch.
_PRUNE_EVERY_SECONDS = 10.0

INDEXES = [
    Indexes(MEMBERS, [IndexModel([("tenant_id", ASCENDING), ("member_id", ASCENDING)])]),
    Indexes(
        DECISIONS,
        [
            IndexModel([("tenant_id", ASCENDING), ("decided_at", ASCENDING)]),
            IndexModel([("tenant_id", ASCENDING), ("group_id", ASCENDING)]),
            IndexModel([("tenant_id", ASCENDING), ("member_id", ASCENDING)]),
        ],
    ),
    Indexes(BLACKLIST, [IndexModel([("tenant_id", ASCENDING)])]),
    *crossgroup.INDEXES,
]


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
        self._prune_due = 0.0
        # Memberships and group names, whose documents only this consumer writes, from the
        # events of the partitions it holds: read once, then served from memory (as judging
        # reads them; None: known not to be there) until an event of the batch changes them or
        # the partitions go elsewhere.
        self.memberships: LRUCache[str, MemberState | None] = LRUCache(_KNOWN_KEPT)
        self.group_names: LRUCache[str, str | None] = LRUCache(_KNOWN_KEPT)

    def forget(self, _: Sequence[TopicPartition] = ()) -> None:
        """The partitions went to another consumer, which will change what is known (what is
        kept is not by partition: all of it goes)."""
        self.memberships.clear()
        self.group_names.clear()
        self.flood = FloodWatch()

    async def handle(self, records: Sequence[Record[events_pb2.Event]]) -> None:
        events = [r.value for r in records]
        now = datetime.now(UTC)
        rules = await self.rulesets.checks_for({(e.tenant_id, e.group_id) for e in events})
        # Everything the batch is judged against, in one round of `_id` lookups: a round trip
        # to the database is most of what a batch costs.
        people = people_of(events)
        posts = crossgroup.posts_by_text(events)
        window = max((r.penalties.window_days for r, _ in rules.values()), default=30)
        found = await asyncio.gather(
            self._known(MEMBERS, members_concerned(events), self.memberships, member_state),
            self._known(
                GROUPS,
                {group_doc_id(e.tenant_id, e.group_id) for e in events},
                self.group_names,
                group_name,
            ),
            self._cross_group_counts(posts, rules),
            self._qr_codes(events, rules),
            self._blacklisted(people),
            self._violations(people, now - timedelta(days=window)),
        )
        members, names, (crossings, recorded), qr_codes, blacklisted, violations = found
        cases = examine(events, rules, members, names, crossings, qr_codes, self.flood, now)
        rulings, new_violations = rule_cases(cases, blacklisted, violations, now)
        await self.publish(rulings, new_violations)
        # What the batch changes of the state is written after its actions leave, keeping the
        # database off the warning's path: a batch judged again reads the same state.
        memberships, directory = membership_changes(events), directory_changes(events)
        for change in memberships:
            self.memberships.pop(change._id, None)
        for change in directory:
            self.group_names.pop(change._id, None)
        await asyncio.gather(
            write_latest(self.store[MEMBERS], memberships),
            write_latest(self.store[GROUPS], directory),
            crossgroup.remember(self.store[CROSS_GROUP], posts, recorded),
        )
        if time.monotonic() >= self._prune_due:
            self.flood.prune()
            self._prune_due = time.monotonic() + _PRUNE_EVERY_SECONDS

    async def publish(
        self, rulings: list[Ruling], violations: Mapping[str, Mapping[str, datetime]] | None = None
    ) -> None:
        """Record the rulings (violations, the audit log, the blacklist), then send their
        actions and decisions. Recorded first, because a ruling may not come out the same when
        judged again (a restart empties the flood windows; a picture may not download twice):
        what was sent is always on record. Ids are deterministic, so publishing again is safe."""
        if not rulings:
            return
        await asyncio.gather(self._remember_violations(violations or {}), self._record(rulings))
        await self.producer.send_many(self._outgoing(rulings))

    async def _find(
        self, collection: str, ids: set[str], fields: dict[str, int] | None = None
    ) -> dict[str, Document]:
        if not ids:
            return {}
        found = self.store[collection].find({"_id": {"$in": sorted(ids)}}, fields)
        return {d["_id"]: d async for d in found}

    async def _known(
        self,
        collection: str,
        ids: set[str],
        kept: LRUCache[str, T | None],
        judged: Callable[[Document | None], T | None],
    ) -> dict[str, T]:
        """What judging needs of these documents: from memory, the rest read in one query.
        Those in memory are taken first (and so become the most recent), before what is read
        may push older ones out."""
        values = {i: kept[i] for i in ids if i in kept}
        missing = ids - values.keys()
        loaded = await self._find(collection, missing, _JUDGED[collection])
        for i in missing:
            values[i] = kept[i] = judged(loaded.get(i))
        return {i: value for i, value in values.items() if value is not None}

    async def _blacklisted(self, people: set[str]) -> set[str]:
        return {d for d, doc in (await self._find(BLACKLIST, people)).items() if doc.get("active")}

    async def _violations(
        self, people: set[str], since: datetime
    ) -> defaultdict[str, dict[str, datetime]]:
        """Each member's violations in the window: event id → when."""
        found: defaultdict[str, dict[str, datetime]] = defaultdict(dict)
        for person, doc in (await self._find(VIOLATIONS, people)).items():
            for entry in doc.get("recent", []):
                event_id, _, at = str(entry).rpartition("|")
                when = datetime.fromtimestamp(int(at) / 1e6, UTC) if at.isdigit() else None
                if event_id and when and when >= since:
                    found[person][event_id] = when
        return found

    async def _remember_violations(self, violations: Mapping[str, Mapping[str, datetime]]) -> None:
        """Appended to the member's history; a redelivery appends an entry again, which reads
        as one (entries are keyed by event). The longest ladder needs far fewer than 100."""
        if not violations:
            return
        await self.store[VIOLATIONS].bulk_write(
            [
                UpdateOne(
                    {"_id": person},
                    {
                        "$push": {
                            "recent": {
                                "$each": [f"{e}|{stamp(at)}" for e, at in sorted(new.items())],
                                "$slice": -100,
                            }
                        }
                    },
                    upsert=True,
                )
                for person, new in violations.items()
            ],
            ordered=False,
        )

    async def _cross_group_counts(
        self,
        posts: dict[str, list[events_pb2.Event]],
        rules: dict[tuple[str, str], tuple[Ruleset, ContentChecks]],
    ) -> tuple[crossgroup.Counts, set[str]]:
        """The batch's cross-group counts, and which of its texts are on record."""
        stored = await self._find(CROSS_GROUP, set(posts))
        rulesets = {group: ruleset for group, (ruleset, _) in rules.items()}
        return crossgroup.counts(posts, stored, rulesets), set(stored)

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

    async def _record(self, rulings: list[Ruling]) -> None:
        if not rulings:
            return
        await insert_new(self.store[DECISIONS], [audit_entry(r.decision) for r in rulings])
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
                                "reason": d.evidence,
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
            out += [outgoing(self.settings.topic_actions, key, a) for a in ruling.actions]
            out.append(outgoing(self.settings.topic_decisions, key, d))
            penalty = (
                decisions_pb2.Decision.Penalty.Name(d.penalty).removeprefix("PENALTY_").lower()
            )
            metrics.MODERATION_DECISIONS.labels(d.rule, penalty).inc()
        return out
