"""Cross-group records (跨群刷屏): in how many of the tenant's groups one member posted one
normalized text within a window. They live in MongoDB, not in memory, because a member's groups
are on many partitions and replicas: one record per member and text, read by `_id`, inserted
when the text is new (the common case, and the cheapest write) and appended to otherwise. A
record lasts two days from its first post, twice the longest window a ruleset may set."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import timedelta

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from services.gen.shequn.v1 import events_pb2
from services.moderation.detect.ruleset import Ruleset
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.store import DELETE_AFTER, Document, Indexes, insert_new, kept_for
from services.runtime.text import normalize

CROSS_GROUP = "cross_group"  # per member and text: the groups and times it was posted
_MIN_LENGTH = 6  # shorter texts ("好的", "谢谢") are said everywhere
_POSTS_KEPT = 200
_KEPT = timedelta(days=2)
INDEXES = [Indexes(CROSS_GROUP, expiring=True)]
Counts = dict[tuple[str, str], int]  # by (tenant, event): two tenants may use one event id


def text_key(tenant_id: str, member_id: str, text: str) -> str | None:
    """One member's one text, normalized: the unit of cross-group spam. (Many members posting
    one text is coordinated spam, a different rule.)"""
    compact = normalize.compact(text).text
    if len(compact) < _MIN_LENGTH:
        return None
    digest = hashlib.sha1(f"{member_id}\0{compact}".encode()).hexdigest()[:24]
    return f"{tenant_id}:{digest}"


def posts_by_text(events: list[events_pb2.Event]) -> dict[str, list[events_pb2.Event]]:
    """The batch's messages by cross-group key, in order."""
    posts: dict[str, list[events_pb2.Event]] = defaultdict(list)
    for e in events:
        if e.WhichOneof("payload") == "message_posted":
            posted = e.message_posted
            key = text_key(e.tenant_id, posted.member.id, posted.message.text)
            if key:
                posts[key].append(e)
    return posts


def _post_entry(entry: str) -> tuple[str, int] | None:
    """A stored post as (group, time); None for an entry of another shape (an older format)."""
    group_id, _, at = entry.partition(":")
    return (group_id, int(at)) if at.isdigit() else None


def counts(
    posts: dict[str, list[events_pb2.Event]],
    stored: dict[str, Document],
    rulesets: dict[tuple[str, str], Ruleset],
) -> Counts:
    """For each post: in how many groups its member posted its text within the window, counting
    what is on record (shared by every replica) and this batch."""
    found: Counts = {}
    for key, batch_posts in posts.items():
        seen = [e for p in stored.get(key, {}).get("posts", []) if (e := _post_entry(p))]
        seen += [(e.group_id, stamp(occurred_at(e))) for e in batch_posts]
        for event in batch_posts:
            ruleset = rulesets[(event.tenant_id, event.group_id)]
            window = ruleset.cross_group.window_seconds * 1_000_000
            at = stamp(occurred_at(event))
            found[(event.tenant_id, event.event_id)] = len(
                {g for g, t in seen if at - window <= t <= at}
            )
    return found


async def remember(
    collection: AsyncCollection[Document],
    posts: dict[str, list[events_pb2.Event]],
    recorded: set[str],
) -> None:
    """Most texts are new: they are inserted, the cheapest write; a text already on record
    (or recorded meanwhile by another replica) gets the posts appended. Two replicas judging
    the same text in the same instant may each miss the other's post, and the next group it
    is posted in then counts both. Entries are "group:time" strings (a group id has no ':'),
    because NX-27017 turns pushed sub-documents into JSON strings on the second push, and plain
    strings are what both servers keep alike."""
    entries = {
        key: [f"{e.group_id}:{stamp(occurred_at(e))}" for e in batch_posts]
        for key, batch_posts in posts.items()
    }
    delete_after = kept_for(_KEPT)
    recorded = recorded | await insert_new(
        collection,
        [
            {"_id": k, "posts": new, DELETE_AFTER: delete_after}
            for k, new in entries.items()
            if k not in recorded
        ],
    )
    appended = [k for k in entries if k in recorded]
    if appended:
        await collection.bulk_write(
            [
                UpdateOne(
                    {"_id": k},
                    {"$push": {"posts": {"$each": entries[k], "$slice": -_POSTS_KEPT}}},
                    upsert=True,
                )
                for k in appended
            ],
            ordered=False,
        )
