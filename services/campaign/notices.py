"""Group notices' I/O: the intended notice per series tag (`{tenant}:{tag}`), and the drift of
the tenant's groups from it, read off campaign's directory (which keeps each group's notice as
the platform reports it). A drift is reminded once to the group's owner (`remind_staff`, its id
made of the group and the drift), when the notice is set and when a group's notice or tags
change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel

from services.campaign.groups import Groups
from services.campaign.notice import REMINDER, Notice, drift, reminder_key
from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import new_action
from services.runtime.refusals import NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store

NOTICES = "notices"
INDEXES = [Indexes(NOTICES, [IndexModel([("tenant_id", ASCENDING)])])]
_CHANGES = {events_pb2.GROUP_CHANGE_NOTICE, events_pb2.GROUP_CHANGE_TAGS}


class Notices:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, directory: Groups
    ) -> None:
        self.notices, self.directory = store[NOTICES], directory
        self.producer, self.topic = producer, settings.topic_actions

    async def put(self, tenant_id: str, tag: str, notice: Notice) -> dict[str, Any]:
        await self.notices.update_one(
            {"_id": f"{tenant_id}:{tag}"},
            {"$set": {"text": notice.text, "tenant_id": tenant_id, "tag": tag}},
            upsert=True,
        )
        await self.remind(tenant_id, None)
        return await self.get(tenant_id, tag)

    async def get(self, tenant_id: str, tag: str) -> dict[str, Any]:
        doc = await self.notices.find_one({"_id": f"{tenant_id}:{tag}"})
        if doc is None:
            raise NotFound("no notice is set for this tag", "tag")
        return {"tag": tag, "text": doc["text"]}

    async def _intended(self, tenant_id: str) -> dict[str, str]:
        return {d["tag"]: d["text"] async for d in self.notices.find({"tenant_id": tenant_id})}

    async def drifted(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        """The tenant's active groups whose notice differs from their tag's, by group id."""
        notices = await self._intended(tenant_id)
        found: list[dict[str, Any]] = []
        if notices:
            for doc in await self.directory.all_of(tenant_id):
                if (after is None or doc["group_id"] > after) and (d := drift(doc, notices)):
                    found.append(d)
        page = sorted(found, key=lambda d: d["group_id"])
        more = page[limit - 1]["group_id"] if len(page) > limit else None
        return {"groups": page[:limit], "next": more}

    async def follow(self, events: Sequence[events_pb2.Event]) -> None:
        """Groups whose notice or tags changed (or that were created) are looked at again."""
        changed: dict[str, set[str]] = {}
        for e in events:
            kind = e.WhichOneof("payload")
            if kind == "group_created" or (
                kind == "group_updated" and _CHANGES & set(e.group_updated.changes)
            ):
                changed.setdefault(e.tenant_id, set()).add(e.group_id)
        for tenant_id, groups in changed.items():
            await self.remind(tenant_id, groups)

    async def remind(self, tenant_id: str, groups: set[str] | None) -> None:
        """Remind the owners of drifted groups (of `groups`, or all), each drift once."""
        notices = await self._intended(tenant_id)
        if not notices:
            return
        docs = (
            list((await self.directory.of(tenant_id, sorted(groups))).values())
            if groups is not None
            else await self.directory.all_of(tenant_id)
        )
        out: list[Outgoing] = []
        for doc in docs:
            found = drift(doc, notices)
            if found is None or found["reported"] is None or not found["owner_id"]:
                continue
            out.append(self._reminder(tenant_id, doc, found))
        await self.producer.send_many(out)

    def _reminder(self, tenant_id: str, doc: Document, found: dict[str, Any]) -> Outgoing:
        action = new_action(
            f"campaign:notice:{tenant_id}:{doc['group_id']}:{reminder_key(found)}",
            tenant_id, doc["group_id"], common_pb2.Platform.Value(doc["platform"]), "campaign",
        )  # fmt: skip
        action.remind_staff.staff_id = found["owner_id"]
        action.remind_staff.text = REMINDER.format(
            group=doc.get("name") or doc["group_id"], notice=found["intended"]
        )
        return outgoing(self.topic, group_key(tenant_id, doc["group_id"]), action)
