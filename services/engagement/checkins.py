"""The check-in consumer's I/O: for a batch's check-in messages, one read of the members'
records, one conditional write, the points booked in one go, and the replies sent.

A record is written only over the record that was read (its `last_day`), so two replicas
judging the same member in the same instant (check-ins in two groups, on two partitions) cannot
both count a day: the one whose write lost gives nothing and says nothing, the other answers.
Record first, points second, replies last: a batch read again after a crash finds its own
check-ins recorded (`again`), and books and sends what is missing, nothing twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from pymongo import UpdateOne

from services.engagement.checkin import (
    Outcome,
    Record,
    check_in,
    day_of,
    is_checkin,
    reply,
)
from services.engagement.points import Grant, Points
from services.engagement.settings import TenantSettings
from services.gen.shequn.v1 import events_pb2
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import answer, follow_up, occurred_at
from services.runtime.settings import Settings
from services.runtime.store import Document, Store, in_order_once

CHECKINS = "checkins"


def _as_record(doc: Document | None) -> Record:
    if not doc:
        return Record()
    return Record(
        date.fromisoformat(doc["last_day"]), doc["streak"], doc["total"], doc["last_event"]
    )


def _write(record_id: str, before: Record, after: Record) -> UpdateOne:
    if before.last_day is None:
        read: Document = {"last_day": {"$exists": False}}
    else:
        read = {"last_day": before.last_day.isoformat()}
    assert after.last_day is not None
    fields = {
        "last_day": after.last_day.isoformat(),
        "streak": after.streak,
        "total": after.total,
        "last_event": after.last_event,
    }
    return UpdateOne({"$and": [{"_id": record_id}, read]}, {"$set": fields}, upsert=True)


class Checkins:
    def __init__(
        self,
        store: Store,
        points: Points,
        producer: Producer,
        settings: Settings,
        configured: TenantSettings,
    ) -> None:
        self.records = store[CHECKINS]
        self.points = points
        self.producer = producer
        self.topic, self.events_topic = settings.topic_actions, settings.topic_events
        self.tz = ZoneInfo(settings.default_timezone)
        self.configured = configured

    async def handle(self, messages: Sequence[events_pb2.Event]) -> None:
        """`messages`: a batch's messages posted by a member."""
        if not messages:
            return
        groups = await self.configured.for_groups({(e.tenant_id, e.group_id) for e in messages})
        rules = {group: value for group, (value, _) in groups.items()}
        said = [
            e
            for e in messages
            if is_checkin(e.message_posted.message.text, rules[(e.tenant_id, e.group_id)].checkin)
        ]
        if not said:
            return
        ids = sorted({_record_id(e) for e in said})
        read = {i: _as_record(d) for i, d in (await self._read(ids)).items()}
        records = {i: read.get(i, Record()) for i in ids}
        outcomes: list[tuple[events_pb2.Event, Outcome]] = []
        for e in said:
            group = rules[(e.tenant_id, e.group_id)]
            day = day_of(occurred_at(e), group.zone(self.tz))
            outcome = check_in(records[_record_id(e)], day, e.event_id, group.checkin)
            records[_record_id(e)] = outcome.record
            outcomes.append((e, outcome))
        lost = await self.write_records(read, records)
        outcomes = [(e, o) for e, o in outcomes if _record_id(e) not in lost]
        rewarded = [(e, o) for e, o in outcomes if o.kind in ("new", "again")]
        booked = await self.points.apply([self._grant(e, o) for e, o in rewarded])
        balances = {b.grant.source: b.balance for b in booked}
        replies = [self._counted(e, o) for e, o in rewarded]
        for e, o in outcomes:
            metrics.CHECKINS.labels(o.kind).inc()
            if (said_back := self._reply(e, o, balances.get(_source(e, o), 0))) is not None:
                replies.append(said_back)
        await self.producer.send_many(replies)

    async def _read(self, ids: list[str]) -> dict[str, Document]:
        return {d["_id"]: d async for d in self.records.find({"_id": {"$in": ids}})}

    async def write_records(self, read: dict[str, Record], records: dict[str, Record]) -> set[str]:
        """Write the records that changed over those read; returns the ids whose write lost."""
        changed = {i: r for i, r in records.items() if r != read.get(i, Record())}
        await in_order_once(
            self.records, [_write(i, read.get(i, Record()), r) for i, r in changed.items()]
        )
        now = {i: _as_record(d) for i, d in (await self._read(sorted(changed))).items()}
        return {i for i, r in changed.items() if now.get(i) != r}

    def _reply(self, e: events_pb2.Event, o: Outcome, balance: int) -> Outgoing | None:
        member = e.message_posted.member
        text = reply(member.name or member.id, o, balance)
        if text is None:
            return None
        action = answer(e, "engagement", "checkin", datetime.now(UTC))
        action.send_text.text = text
        action.send_text.mentions.append(member.id)
        return outgoing(self.topic, group_key(e.tenant_id, e.group_id), action)

    def _counted(self, e: events_pb2.Event, o: Outcome) -> Outgoing:
        """The check-in said on the events topic, for the statistics."""
        event = follow_up(e, "engagement", "checkin")
        event.member_checked_in.member.CopyFrom(e.message_posted.member)
        event.member_checked_in.day = str(o.record.last_day)
        event.member_checked_in.streak, event.member_checked_in.points = o.record.streak, o.points
        return outgoing(self.events_topic, group_key(e.tenant_id, e.group_id), event)

    def _grant(self, e: events_pb2.Event, o: Outcome) -> Grant:
        member = e.message_posted.member.id
        return Grant(e.tenant_id, member, _source(e, o), o.points, "签到", occurred_at(e))


def _record_id(e: events_pb2.Event) -> str:
    return f"{e.tenant_id}:{e.message_posted.member.id}"


def _source(e: events_pb2.Event, o: Outcome) -> str:
    """A member's check-in of a day: what its points are booked under, once."""
    return f"checkin:{e.message_posted.member.id}:{o.record.last_day}"
