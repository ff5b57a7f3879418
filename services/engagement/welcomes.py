"""Welcome's I/O: windows stored as they fill, and sent by a due-time sweep, so that each window
is welcomed once across redeliveries, restarts and replicas.

- The consumer places a batch's joins (`welcome.place`) over each group's head (its latest
  window), read in one `$in`, and adds them to their windows with one bulk upsert that only
  matches a window still open. A join whose window closed meanwhile (a late copy of an event
  from long ago, or one that lost the race to the sweep) is welcomed in a window of its own.
- The sweep reads the windows that are due (an index on `due`, which only open and claimed
  windows carry, so its cost does not grow with the windows sent), claims them by a
  conditional update on the `due` it read, sends their welcomes and marks them sent. A claim
  that is not finished (the process died) is due again after a lease, and sends the same
  actions again, which delivery does not repeat.
- Removals (a member kicked on arrival, from moderation's decisions, or gone, from the events)
  are kept a day; the sweep welcomes nobody removed since joining."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from services.engagement.directory import Directory
from services.engagement.settings import EngagementSettings, TenantSettings
from services.engagement.welcome import Head, Newcomer, Welcome, place, welcomes
from services.gen.shequn.v1 import actions_pb2, common_pb2, decisions_pb2, events_pb2
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import natural_id, new_action, new_event, occurred_at
from services.runtime.instants import stamp
from services.runtime.settings import Settings
from services.runtime.store import (
    DELETE_AFTER,
    DUPLICATE_KEY,
    Document,
    Indexes,
    Store,
    in_order_once,
    insert_new,
    kept_for,
)

HEADS = "welcome_heads"
WINDOWS = "welcome_windows"
REMOVALS = "welcome_removals"
POSTED = "welcome_posted"  # welcomes a platform posted, while not yet cleaned away
INDEXES = [
    Indexes(WINDOWS, [IndexModel([("due", ASCENDING)])], expiring=True),
    Indexes(REMOVALS, expiring=True),
    Indexes(POSTED, [IndexModel([("open", ASCENDING)])], expiring=True),
]
_WELCOME = "engagement:welcome:"
_LEASE = timedelta(seconds=30)
_KEPT = timedelta(days=7)
_REMOVAL_KEPT = timedelta(days=1)
_SWEEP_MAX = 500
# The group's owner and admins joining (its staff, as a group is set up) are not newcomers.
_STAFF = (common_pb2.GROUP_ROLE_OWNER, common_pb2.GROUP_ROLE_ADMIN)


def _at(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC)


class Welcomes:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, configured: TenantSettings
    ) -> None:
        self.heads, self.windows = store[HEADS], store[WINDOWS]
        self.removals, self.directory = store[REMOVALS], Directory(store)
        self.posted = store[POSTED]
        self.producer, self.topic, self.configured = producer, settings.topic_actions, configured
        self.events_topic = settings.topic_events

    async def handle(self, events: Sequence[events_pb2.Event]) -> None:
        """A batch's events: group names, departures, and the joins placed in windows."""
        await self.directory.record(events)
        await self.removed(
            [
                (e.tenant_id, e.group_id, e.member_left.member.id, occurred_at(e))
                for e in events
                if e.WhichOneof("payload") == "member_left"
            ]
        )
        joins = [e for e in events if e.WhichOneof("payload") == "member_joined"]
        if not joins:
            return
        found = await self.configured.for_groups({(e.tenant_id, e.group_id) for e in joins})
        settings = {group: value for group, (value, _) in found.items()}
        joins = [
            e
            for e in joins
            if settings[(e.tenant_id, e.group_id)].welcome.enabled
            and e.platform != common_pb2.PLATFORM_WECOM  # WeCom posts its template (templates.py)
            and e.member_joined.member.id
            and e.member_joined.member.role not in _STAFF
            and e.member_joined.member.id
            not in settings[(e.tenant_id, e.group_id)].assistant_mentions
        ]
        if joins:
            await self._place(joins, settings)

    async def _place(
        self, joins: list[events_pb2.Event], settings: dict[tuple[str, str], EngagementSettings]
    ) -> None:
        groups = sorted({f"{e.tenant_id}:{e.group_id}" for e in joins})
        read = {d["_id"]: _head(d) async for d in self.heads.find({"_id": {"$in": groups}})}
        heads = dict(read)
        filling: dict[str, _Filling] = {}
        now = datetime.now(UTC)
        for e in joins:
            rules = settings[(e.tenant_id, e.group_id)].welcome
            length = timedelta(seconds=rules.combine_window_seconds)
            group, at = f"{e.tenant_id}:{e.group_id}", occurred_at(e)
            start, is_head = place(heads.get(group), at, length)
            window_id = f"{group}:{stamp(start)}"
            if is_head:
                heads[group] = Head(window_id, start, start + length)
            end = heads[group].end if heads[group].window_id == window_id else start + length
            due = max(end, now + timedelta(seconds=rules.hold_seconds))
            window = filling.setdefault(window_id, _Filling(e, start, due))
            window.due = max(window.due, due)
            window.newcomers.append(_newcomer(e))
        await self._add(filling)
        stored = self.windows.find({"_id": {"$in": sorted(filling)}}, {"joins": 1})
        held = {d["_id"]: {j["event_id"] for j in d.get("joins", [])} async for d in stored}
        await self._add(
            {
                f"{window_id}:{n.event_id}": _Filling(window.first, n.at, now, [n])
                for window_id, window in filling.items()
                for n in window.newcomers
                if n.event_id not in held.get(window_id, set())
            }
        )
        await in_order_once(
            self.heads,
            [_head_write(g, read.get(g), h) for g, h in heads.items() if h != read.get(g)],
        )

    async def _add(self, filling: dict[str, _Filling]) -> None:
        """Add the joins to their windows, if still open (new ones are opened)."""
        ops = [
            UpdateOne(
                {"$and": [{"_id": window_id}, {"state": "open"}]},
                {
                    "$setOnInsert": {
                        "tenant_id": w.first.tenant_id,
                        "group_id": w.first.group_id,
                        "platform": w.first.platform,
                        "start": stamp(w.start),
                        "state": "open",
                        DELETE_AFTER: kept_for(_KEPT),
                    },
                    "$addToSet": {"joins": {"$each": [_joined(n) for n in w.newcomers]}},
                    "$max": {"due": stamp(w.due)},
                },
                upsert=True,
            )
            for window_id, w in filling.items()
        ]
        if not ops:
            return
        try:
            await self.windows.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # A window no longer open: its joins are found missing and welcomed on their own.
            if any(e["code"] != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def removed(self, members: list[tuple[str, str, str, datetime]]) -> None:
        """Members kicked or gone at a time: no welcome for a join before it."""
        if not members:
            return
        ops = [
            UpdateOne(
                {"_id": f"{t}:{g}:{m}"},
                {"$max": {"at": stamp(at)}, "$set": {DELETE_AFTER: kept_for(_REMOVAL_KEPT)}},
                upsert=True,
            )
            for t, g, m, at in members
        ]
        await self.removals.bulk_write(ops, ordered=False)

    async def decided(self, decisions: Sequence[decisions_pb2.Decision]) -> None:
        """Moderation's kicks (a blacklisted newcomer, an invite policy): removals."""
        kicked = decisions_pb2.Decision.PENALTY_KICK
        await self.removed(
            [
                (d.tenant_id, d.group_id, d.member_id, d.event_occurred_at.ToDatetime(UTC))
                for d in decisions
                if d.penalty == kicked and d.group_id and d.member_id
            ]
        )

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """Welcomes the platform posted, with its message ids: what a clean welcome deletes."""
        ok = actions_pb2.DELIVERY_STATUS_DELIVERED
        await insert_new(
            self.posted,
            [
                {
                    "_id": r.action_id,
                    "open": f"{r.tenant_id}:{r.group_id}",
                    "message_id": r.message_id,
                    "platform": r.platform,
                    DELETE_AFTER: kept_for(_KEPT),
                }
                for r in results
                if r.action_id.startswith(_WELCOME) and r.status == ok and r.message_id
            ],
        )

    async def sweep(self, now: datetime) -> int:
        """Send the welcomes of the windows due by `now`; returns how many were due."""
        found = self.windows.find({"due": {"$lte": stamp(now)}}, {"due": 1}, limit=_SWEEP_MAX)
        due = [d async for d in found]
        if not due:
            return 0
        claim, lease = secrets.token_hex(8), stamp(now + _LEASE)
        claims = [
            UpdateOne(
                {"_id": d["_id"], "due": d["due"]},
                {"$set": {"state": "claimed", "claim": claim, "due": lease}},
            )
            for d in due
        ]
        await self.windows.bulk_write(claims, ordered=False)
        ids = [d["_id"] for d in due]
        claimed = [d async for d in self.windows.find({"_id": {"$in": ids}, "claim": claim})]
        if claimed:
            await self._send(claimed)
            sent = {"$set": {"state": "sent"}, "$unset": {"due": ""}}
            done = [UpdateOne({"_id": d["_id"], "claim": claim}, sent) for d in claimed]
            await self.windows.bulk_write(done, ordered=False)
        return len(due)

    async def _send(self, windows: list[Document]) -> None:
        if not windows:
            return
        groups = {(w["tenant_id"], w["group_id"]) for w in windows}
        found = await self.configured.for_groups(groups)
        directory = await self.directory.of(groups)
        members = sorted(
            f"{w['tenant_id']}:{w['group_id']}:{j['member_id']}"
            for w in windows
            for j in w["joins"]
        )
        gone = {d["_id"]: _at(d["at"]) async for d in self.removals.find({"_id": {"$in": members}})}
        out = await self._cleaned(
            {f"{t}:{g}" for (t, g), (settings, _) in found.items() if settings.welcome.clean}
        )
        for w in windows:
            group = f"{w['tenant_id']}:{w['group_id']}"
            rules = found[(w["tenant_id"], w["group_id"])][0].welcome
            info = directory.get(group, {})
            removed = {
                j["member_id"]: gone[f"{group}:{j['member_id']}"]
                for j in w["joins"]
                if f"{group}:{j['member_id']}" in gone
            }
            newcomers = [_newcomer_of(j) for j in w["joins"]]
            for welcome in welcomes(
                w["_id"], newcomers, removed, rules, info.get("name", ""), info.get("notice", "")
            ):
                metrics.WELCOMES.labels("combined" if len(welcome.mentions) > 1 else "single").inc()
                key = group_key(w["tenant_id"], w["group_id"])
                out.append(outgoing(self.topic, key, _action(w, welcome)))
                if rules.entry_coupon:  # campaign gives it (its coupons' welcome hook)
                    welcomed = _welcomed(w, welcome, newcomers, rules.entry_coupon)
                    out.append(outgoing(self.events_topic, key, welcomed))
        await self.producer.send_many(out)

    async def _cleaned(self, groups: set[str]) -> list[Outgoing]:
        """The deletions of the earlier welcomes in groups that keep only the latest."""
        if not groups:
            return []
        earlier = [d async for d in self.posted.find({"open": {"$in": sorted(groups)}})]
        deletions = []
        for doc in earlier:
            tenant_id, group_id = doc["open"].split(":", 1)
            action_id = f"engagement:welcome-cleaned:{doc['_id']}"
            action = new_action(action_id, tenant_id, group_id, doc["platform"], "engagement")
            action.delete_message.message_id = doc["message_id"]
            deletions.append(outgoing(self.topic, group_key(tenant_id, group_id), action))
        if earlier:
            # Sent with the new welcomes; a sweep that dies first sends these again, the same.
            ids = [d["_id"] for d in earlier]
            await self.posted.update_many({"_id": {"$in": ids}}, {"$unset": {"open": ""}})
        return deletions

    async def send_due(self) -> None:
        """Send every window due now."""
        while await self.sweep(datetime.now(UTC)) == _SWEEP_MAX:
            pass


@dataclass
class _Filling:
    """A window as a batch adds to it: its first join's event, start, due time, newcomers."""

    first: events_pb2.Event
    start: datetime
    due: datetime
    newcomers: list[Newcomer] = field(default_factory=list)


def _action(window: Document, welcome: Welcome) -> actions_pb2.Action:
    action = new_action(
        f"{_WELCOME}{welcome.key}",
        window["tenant_id"],
        window["group_id"],
        window["platform"],
        "engagement",
        welcome.cause_event_id,
    )
    action.send_text.text = welcome.text
    action.send_text.mentions.extend(welcome.mentions)
    return action


def _welcomed(
    window: Document, welcome: Welcome, newcomers: list[Newcomer], coupon: str
) -> events_pb2.Event:
    """The event that tells campaign whom the welcome welcomed, with the entry coupon."""
    now = datetime.now(UTC)
    event = new_event(
        natural_id(f"{_WELCOME}{welcome.key}", "welcomed"),
        window["tenant_id"], window["group_id"], window["platform"], now, now,
    )  # fmt: skip
    names = {n.member_id: n.name for n in newcomers}
    for member_id in welcome.mentions:
        event.member_welcomed.members.add(id=member_id, name=names.get(member_id, ""))
    event.member_welcomed.entry_coupon_id = coupon
    return event


def _newcomer(e: events_pb2.Event) -> Newcomer:
    member = e.member_joined.member
    return Newcomer(member.id, member.name, e.event_id, occurred_at(e))


def _joined(n: Newcomer) -> Document:
    return {"member_id": n.member_id, "name": n.name, "event_id": n.event_id, "at": stamp(n.at)}


def _newcomer_of(doc: Document) -> Newcomer:
    return Newcomer(doc["member_id"], doc["name"], doc["event_id"], _at(doc["at"]))


def _head(doc: Document) -> Head:
    return Head(doc["window_id"], _at(doc["start"]), _at(doc["end"]))


def _head_write(group: str, before: Head | None, after: Head) -> UpdateOne:
    read: Document = {"end": {"$exists": False}} if before is None else {"end": stamp(before.end)}
    fields = {"window_id": after.window_id, "start": stamp(after.start), "end": stamp(after.end)}
    return UpdateOne({"$and": [{"_id": group}, read]}, {"$set": fields}, upsert=True)
