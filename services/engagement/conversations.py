"""Segments' I/O: the day's conversation state of each group (`segments.Day`) is one document,
read for a batch's groups in one `$in` and written over the version read, and who is in each
group is engagement's own membership projection. A segment query reads one day document and
counts one group's members: never the messages."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, IndexModel, UpdateOne

from services.engagement.segments import Day, Said, scored, segments
from services.engagement.settings import TenantSettings
from services.gen.shequn.v1 import events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.projections import membership_changes
from services.runtime.settings import Settings
from services.runtime.store import (
    DELETE_AFTER,
    Document,
    Indexes,
    Store,
    in_order_once,
    kept_for,
    over_version,
    write_latest,
)

DAYS = "conversation_days"
MEMBERS = "members"
INDEXES = [Indexes(DAYS, expiring=True), Indexes(MEMBERS, [IndexModel([("group_id", ASCENDING)])])]
_KEPT = timedelta(days=400)


def _at(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC)


def _day(doc: Document | None) -> Day:
    if not doc:
        return Day()
    last = doc.get("last")
    said = Said(last["event_id"], _at(last["at"]), last["member_id"]) if last else None
    return Day(dict(doc.get("scores", {})), said)


class Conversations:
    def __init__(self, store: Store, settings: Settings, configured: TenantSettings) -> None:
        self.days, self.members = store[DAYS], store[MEMBERS]
        self.configured, self.tz = configured, ZoneInfo(settings.default_timezone)

    async def handle(self, events: Sequence[events_pb2.Event]) -> None:
        await write_latest(self.members, membership_changes(events))
        messages = [
            e
            for e in events
            if e.WhichOneof("payload") == "message_posted" and e.message_posted.member.id
        ]
        if not messages:
            return
        found = await self.configured.for_groups({(e.tenant_id, e.group_id) for e in messages})
        by_day: dict[str, list[Said]] = defaultdict(list)
        where: dict[str, tuple[str, str, str]] = {}
        for e in messages:
            zone = found[(e.tenant_id, e.group_id)][0].zone(self.tz)
            day = occurred_at(e).astimezone(zone).date().isoformat()
            key = f"{e.tenant_id}:{e.group_id}:{day}"
            where[key] = (e.tenant_id, e.group_id, day)
            by_day[key].append(Said(e.event_id, occurred_at(e), e.message_posted.member.id))
        read = {d["_id"]: d async for d in self.days.find({"_id": {"$in": sorted(by_day)}})}
        writes = []
        for key, said in by_day.items():
            before = read.get(key)
            after = scored(_day(before), said)
            if after.last != _day(before).last:
                writes.append(_write(key, where[key], before, after))
        await in_order_once(self.days, writes)  # a write that lost to another replica: skipped

    async def segments(self, tenant_id: str, group_id: str, day: date) -> dict[str, Any]:
        doc = await self.days.find_one({"_id": f"{tenant_id}:{group_id}:{day.isoformat()}"})
        scores = dict((doc or {}).get("scores", {}))
        members = await self.members.count_documents(
            {"group_id": group_id, "tenant_id": tenant_id, "in_group": True}
        )
        split = segments(scores, members)
        return {
            "date": day.isoformat(),
            "koc": len(split.koc),
            "interactive": split.interactive,
            "silent": split.silent,
            "koc_members": split.koc,
        }

    async def today(self, tenant_id: str, group_id: str) -> date:
        [(settings, _)] = (await self.configured.for_groups({(tenant_id, group_id)})).values()
        return datetime.now(UTC).astimezone(settings.zone(self.tz)).date()


def _write(key: str, where: tuple[str, str, str], before: Document | None, after: Day) -> UpdateOne:
    tenant_id, group_id, day = where
    last = after.last
    fields = {
        "tenant_id": tenant_id,
        "group_id": group_id,
        "date": day,
        "scores": after.scores,
        "last": {"event_id": last.event_id, "at": stamp(last.at), "member_id": last.member_id}
        if last
        else None,
        "version": secrets.token_hex(8),
        DELETE_AFTER: kept_for(_KEPT),
    }
    return UpdateOne(over_version(key, before), {"$set": fields}, upsert=True)
