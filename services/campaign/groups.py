"""Campaign's copy of the group directory (`runtime.projections`): the groups broadcasts and SOP
schedules choose from, with their platform, owner, series tags and status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel

from services.campaign.audience import Audience, chosen, skipped_reason
from services.gen.shequn.v1 import events_pb2
from services.runtime.projections import directory_changes, group_doc_id
from services.runtime.refusals import Invalid, NotFound
from services.runtime.store import Document, Indexes, Store, write_latest

GROUPS = "groups"
INDEXES = [Indexes(GROUPS, [IndexModel([("tenant_id", ASCENDING)])])]
Reached = dict[str, str]  # group_id, platform, name


class Groups:
    def __init__(self, store: Store) -> None:
        self.groups = store[GROUPS]

    async def record(self, events: Sequence[events_pb2.Event]) -> None:
        await write_latest(self.groups, directory_changes(events))

    async def of(self, tenant_id: str, group_ids: list[str]) -> dict[str, Document]:
        """The directory's documents of the tenant's groups (those seen), by group id."""
        ids = sorted({group_doc_id(tenant_id, g) for g in group_ids})
        return {d["group_id"]: d async for d in self.groups.find({"_id": {"$in": ids}})}

    async def known(self, tenant_id: str, group_id: str) -> Document:
        """The group's document, or 404 naming `group_id` when no event of it was seen."""
        doc = (await self.of(tenant_id, [group_id])).get(group_id)
        if doc is None:
            raise NotFound("no event of this group has been seen", "group_id")
        return doc

    async def all_of(self, tenant_id: str) -> list[Document]:
        """Every group of the tenant campaign knows (an operator's query, not a hot path)."""
        return [d async for d in self.groups.find({"tenant_id": tenant_id})]

    async def owned(self, tenant_id: str, owner: str, most: int) -> list[Document]:
        """Up to `most` active groups the staff member owns, by id."""
        found = self.groups.find({"tenant_id": tenant_id}).sort("_id", ASCENDING)
        owned = []
        async for d in found:
            if d.get("owner_id") == owner and d.get("status") != "dismissed":
                owned.append(d)
                if len(owned) >= most:
                    break
        return owned

    async def audience(
        self, tenant_id: str, audience: Audience, most: int
    ) -> tuple[list[Reached], list[dict[str, str]]]:
        """The groups the audience reaches, and those skipped with why; more than `most` is
        refused, naming the limit."""
        if audience.groups is not None:
            ids = [group_doc_id(tenant_id, g) for g in audience.groups]
            found = [d async for d in self.groups.find({"_id": {"$in": ids}})]
        else:
            found = [d async for d in self.groups.find({"tenant_id": tenant_id})]
            found = [d for d in found if d.get("status") != "dismissed"]
        named = chosen(audience, found)
        if len(named) > most:
            raise Invalid(audience.field, f"at most {most} groups, got {len(named)}")
        by_id = {d["group_id"]: d for d in found}
        reached, skipped = [], []
        for group_id in named:
            doc = by_id.get(group_id)
            if reason := skipped_reason(doc):
                skipped.append({"group_id": group_id, "reason": reason})
            elif doc is not None:
                reached.append(
                    {"group_id": group_id, "platform": doc["platform"], "name": doc.get("name", "")}
                )
        return reached, skipped

    async def page(
        self, tenant_id: str, tag: str | None, owner: str | None, limit: int, after: str | None
    ) -> dict[str, Any]:
        """A page of the tenant's groups, by id; with a tag or an owner, only theirs."""
        where: Document = {"tenant_id": tenant_id}
        if after:
            where = {"$and": [where, {"_id": {"$gt": group_doc_id(tenant_id, after)}}]}
        found = self.groups.find(where).sort("_id", ASCENDING)
        shown = ("group_id", "name", "platform", "status", "owner_id", "tags")
        page: list[dict[str, Any]] = []
        async for d in found:
            if (tag and tag not in d.get("tags", [])) or (owner and d.get("owner_id") != owner):
                continue
            page.append({k: d.get(k) for k in shown})
            if len(page) > limit:
                break
        more = page[limit - 1]["group_id"] if len(page) > limit else None
        return {"groups": page[:limit], "next": more}
