"""Analytics' projections that are states rather than counts, each updated once per batch:
- scan keys, `{tenant}:token:{join token}` and `{tenant}:invite:{invite code}`: the live code a
  scan was of, so that a join naming only its token or invite code (Telegram's invite links,
  fission) is counted in that live code's funnel;
- members, `{tenant}:{group}:{member}`: the member's joins (for cohorts, `cohorts.Joining`);
- groups, `{tenant}:{group}`: name, series tags, dismissed, last message and who posted on
  which of the last days (for the dead-group list and the tag filters), beside the members
  count that `counters` keeps there.
Both are idempotent (a set of joins, the latest of each), so a batch read twice writes the same."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, IndexModel, UpdateOne

from services.analytics.cohorts import Joining, joining, member_of
from services.gen.shequn.v1 import events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.store import DELETE_AFTER, Document, Indexes, Store, kept_for

SCAN_KEYS = "scan_keys"
MEMBERS = "members"
GROUPS = "groups"
INDEXES = [
    Indexes(GROUPS, [IndexModel([("tenant_id", ASCENDING)])]),
    Indexes(SCAN_KEYS, expiring=True),
]
SCAN_KEYS_KEPT = timedelta(days=90)  # an invite code is used as long as its task runs
RECENT_DAYS = 8  # who posted on which day, kept for the last days before a group's newest message
RECENT_MOST = 5_000  # entries kept: a larger group's active ratio is a lower bound


def member_id(event: events_pb2.Event) -> str:
    return f"{event.tenant_id}:{event.group_id}:{member_of(event)}"


def _scan_keys(event: events_pb2.Event) -> list[str]:
    """The keys a join names its scan by, or a scan is named by."""
    kind = event.WhichOneof("payload")
    if kind not in ("livecode_scanned", "member_joined"):
        return []
    found = getattr(event, kind)
    keys = [f"token:{found.join_token}"] if found.join_token else []
    keys += [f"invite:{found.invite_code}"] if found.invite_code else []
    return [f"{event.tenant_id}:{k}" for k in keys]


class ScanKeys:
    def __init__(self, store: Store) -> None:
        self.keys = store[SCAN_KEYS]

    async def joinings(self, events: Sequence[events_pb2.Event]) -> dict[str, Joining]:
        """Each join of `events` (by event id) with the live code it came through: its own, or
        the one of the scan its token or invite code names (the scans of `events` first)."""
        scanned: dict[str, Document] = {}  # key: the live code, and whether invited
        for e in events:
            if e.WhichOneof("payload") == "livecode_scanned" and e.livecode_scanned.livecode:
                of: Document = {"livecode": e.livecode_scanned.livecode,
                      "invited": bool(e.livecode_scanned.invite_code)}  # fmt: skip
                scanned.update(dict.fromkeys(_scan_keys(e), of))
        if scanned:
            delete_after = kept_for(SCAN_KEYS_KEPT)
            await self.keys.bulk_write(
                [UpdateOne({"_id": k}, {"$set": {**of, DELETE_AFTER: delete_after}}, upsert=True)
                 for k, of in scanned.items()],
                ordered=False,
            )  # fmt: skip
        joins = [e for e in events if e.WhichOneof("payload") == "member_joined"]
        unknown = {k for e in joins if not e.member_joined.livecode for k in _scan_keys(e)}
        unknown -= set(scanned)
        if unknown:
            found = self.keys.find({"_id": {"$in": sorted(unknown)}}, {"livecode": 1, "invited": 1})
            scanned.update({d["_id"]: d async for d in found})
        resolved = {}
        for e in joins:
            own = joining(e)
            scan = next((scanned[k] for k in _scan_keys(e) if k in scanned), None)
            if not own.livecode and scan is not None:
                own = Joining(own.at, scan["livecode"], own.invited or bool(scan["invited"]))
            resolved[e.event_id] = own
        return resolved


class Members:
    def __init__(self, store: Store) -> None:
        self.members = store[MEMBERS]

    async def joinings(
        self, events: Sequence[events_pb2.Event], resolved: dict[str, Joining]
    ) -> dict[str, list[Joining]]:
        """The joins of every member the events are about, those in `events` (`resolved`, by
        event id) recorded first."""
        joins: dict[str, set[str]] = defaultdict(set)
        for e in events:
            if e.event_id in resolved and member_of(e):
                joins[member_id(e)].add(resolved[e.event_id].encode())
        if joins:
            await self.members.bulk_write(
                [
                    UpdateOne(
                        {"_id": key},
                        {"$addToSet": {"joinings": {"$each": sorted(found)}}},
                        upsert=True,
                    )
                    for key, found in joins.items()
                ],
                ordered=False,
            )
        asked = {member_id(e) for e in events if member_of(e)}
        known: dict[str, list[Joining]] = {}
        if asked:
            async for doc in self.members.find({"_id": {"$in": sorted(asked)}}, {"joinings": 1}):
                known[doc["_id"]] = sorted(Joining.decode(j) for j in doc.get("joinings", []))
        return known


def recent_posters(
    kept: Iterable[str], posted: dict[str, date], most: int = RECENT_MOST
) -> list[str]:
    """`day|member` for each member's last day posted, within `RECENT_DAYS` of the newest."""
    last: dict[str, str] = {}
    for entry in kept:
        seen, member = entry.split("|", 1)
        last[member] = max(seen, last.get(member, seen))
    for member, day in posted.items():
        last[member] = max(day.isoformat(), last.get(member, day.isoformat()))
    newest = date.fromisoformat(max(last.values()))
    first = (newest - timedelta(days=RECENT_DAYS - 1)).isoformat()
    entries = sorted((f"{d}|{m}" for m, d in last.items() if d >= first), reverse=True)
    return sorted(entries[:most])


def _group_info(event: events_pb2.Event) -> Document:
    kind = event.WhichOneof("payload")
    if kind == "group_dismissed":
        return {"dismissed": stamp(occurred_at(event))}
    if kind not in ("group_created", "group_updated"):
        return {}
    group = getattr(event, kind).group
    info: Document = {"name": group.name} if group.name else {}
    changed_tags = (
        kind == "group_updated" and events_pb2.GROUP_CHANGE_TAGS in event.group_updated.changes
    )
    if group.tags or changed_tags:
        info["tags"] = sorted(set(group.tags))
    return info


class Groups:
    def __init__(self, store: Store) -> None:
        self.groups = store[GROUPS]

    async def load(self, events: Sequence[events_pb2.Event]) -> dict[str, Document]:
        """The state of the events' groups, their tags as the batch leaves them."""
        keys = sorted({f"{e.tenant_id}:{e.group_id}" for e in events})
        found = self.groups.find({"_id": {"$in": keys}}, {"recent": 1, "tags": 1})
        loaded: dict[str, Document] = {d["_id"]: d async for d in found}
        for e in events:
            if "tags" in (info := _group_info(e)):
                loaded.setdefault(f"{e.tenant_id}:{e.group_id}", {})["tags"] = info["tags"]
        return loaded

    async def absorb(
        self,
        events: Sequence[events_pb2.Event],
        zones: dict[str, ZoneInfo],
        loaded: dict[str, Document],
    ) -> None:
        """`loaded`: what `load` found before the batch."""
        info: dict[str, Document] = defaultdict(dict)
        posted: dict[str, dict[str, date]] = defaultdict(dict)
        last_message: dict[str, int] = {}
        first_seen: dict[str, int] = {}
        for e in events:
            key, at = f"{e.tenant_id}:{e.group_id}", occurred_at(e)
            first_seen[key] = min(stamp(at), first_seen.get(key, stamp(at)))
            info[key].update(_group_info(e))
            if e.WhichOneof("payload") == "message_posted" and e.message_posted.member.id:
                day, member = at.astimezone(zones[e.tenant_id]).date(), e.message_posted.member.id
                posted[key][member] = max(day, posted[key].get(member, day))
                last_message[key] = max(stamp(at), last_message.get(key, 0))
        ops = []
        for key in sorted(first_seen):
            tenant_id, group_id = key.split(":", 1)
            update: Document = {
                "$setOnInsert": {"tenant_id": tenant_id, "group_id": group_id},
                "$min": {"first_seen": first_seen[key]},
            }
            if info.get(key):
                update["$set"] = dict(info[key])
            if key in posted:
                recent = recent_posters(loaded.get(key, {}).get("recent", []), posted[key])
                update.setdefault("$set", {})["recent"] = recent
                update["$max"] = {"last_message": last_message[key]}
            ops.append(UpdateOne({"_id": key}, update, upsert=True))
        if ops:
            await self.groups.bulk_write(ops, ordered=False)
