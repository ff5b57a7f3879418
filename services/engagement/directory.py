"""Engagement's copy of the group directory (`runtime.projections`): the names and notices
its messages speak of, and the platform of the groups operators address by id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymongo.asynchronous.collection import AsyncCollection

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.projections import directory_changes, group_doc_id
from services.runtime.refusals import NotFound
from services.runtime.store import Document, Store, write_latest

GROUPS = "groups"


class Directory:
    def __init__(self, store: Store) -> None:
        self.groups: AsyncCollection[Document] = store[GROUPS]

    async def record(self, events: Sequence[events_pb2.Event]) -> None:
        await write_latest(self.groups, directory_changes(events))

    async def of(self, groups: Iterable[tuple[str, str]]) -> dict[str, Document]:
        """The groups' documents by "{tenant}:{group}" (those seen)."""
        ids = sorted({group_doc_id(t, g) for t, g in groups})
        return {d["_id"]: d async for d in self.groups.find({"_id": {"$in": ids}})}

    async def platform(self, tenant_id: str, group_id: str) -> common_pb2.Platform.ValueType:
        """The platform of a group of the tenant's, which engagement must have seen."""
        doc = await self.groups.find_one({"_id": group_doc_id(tenant_id, group_id)})
        if doc is None:
            raise NotFound("no group of this id has been seen in the tenant", "group_id")
        return common_pb2.Platform.Value(doc.get("platform", "PLATFORM_SIM"))

    async def is_wecom(self, tenant_id: str, group_id: str) -> bool:
        doc = await self.groups.find_one({"_id": group_doc_id(tenant_id, group_id)})
        return doc is not None and doc.get("platform") == "PLATFORM_WECOM"
