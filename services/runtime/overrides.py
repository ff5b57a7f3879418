"""Settings a tenant sets once, with an override per group: moderation's rulesets, engagement's
settings. The tenant's are one document (`_id = tenant`), a group's override another
(`_id = "{tenant}:{group}"`) holding only the fields it changes, merged over the tenant's
(nested objects field by field). A tenant that set nothing has the model's defaults.

A batch's groups are read in one `$in` query, kept a few seconds, and what a pair of versions
(the tenant's, the group's) merges to is worked out once: a consumer asks for it with every
batch."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from cachetools import LRUCache, TTLCache
from pydantic import BaseModel
from pymongo.asynchronous.collection import AsyncCollection

from services.runtime.instants import stamp
from services.runtime.store import Document

M = TypeVar("M", bound=BaseModel)
_CACHE_SECONDS = 5.0
_DOCS_KEPT = 100_000  # tenant settings and group overrides read (or found missing)
_EFFECTIVE_KEPT = 10_000  # (tenant, override) versions: the merged settings and a digest each


def merged(base: M, override: dict[str, Any] | None) -> M:
    """A group's settings: the tenant's, with the group's override on top (nested objects
    merge field by field). Raises pydantic's ValidationError for an override that is not valid
    settings."""
    if not override:
        return base
    fields = base.model_dump()
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(fields.get(key), dict):
            fields[key] = {**fields[key], **value}
        else:
            fields[key] = value
    return type(base).model_validate(fields)


class Overridable(Generic[M]):
    def __init__(
        self, collection: AsyncCollection[Document], model: type[M], field: str = "settings"
    ) -> None:
        self.collection = collection
        self.model = model
        self.field = field  # where the tenant's document holds them
        # A viewer can ask for any group id: what is kept is bounded in size and in time.
        self._docs: TTLCache[str, tuple[Document | None]] = TTLCache(_DOCS_KEPT, _CACHE_SECONDS)
        self._effective: LRUCache[str, tuple[M, str]] = LRUCache(_EFFECTIVE_KEPT)

    async def put_tenant(self, tenant_id: str, value: M) -> None:
        await self._put(tenant_id, {"tenant_id": tenant_id, self.field: value.model_dump()})

    async def put_group(self, tenant_id: str, group_id: str, override: dict[str, Any]) -> None:
        doc = {"tenant_id": tenant_id, "group_id": group_id, "override": override}
        await self._put(f"{tenant_id}:{group_id}", doc)

    async def delete_group(self, tenant_id: str, group_id: str) -> bool:
        self._docs.pop(f"{tenant_id}:{group_id}", None)
        result = await self.collection.delete_one({"_id": f"{tenant_id}:{group_id}"})
        return result.deleted_count > 0

    async def _put(self, doc_id: str, fields: Document) -> None:
        version = stamp(datetime.now(UTC))
        await self.collection.update_one(
            {"_id": doc_id}, {"$set": {**fields, "version": version}}, upsert=True
        )
        self._docs.pop(doc_id, None)

    async def tenant(self, tenant_id: str) -> M:
        [doc] = (await self._load([tenant_id])).values()
        return self._value(doc)

    async def override(self, tenant_id: str, group_id: str) -> dict[str, Any] | None:
        [doc] = (await self._load([f"{tenant_id}:{group_id}"])).values()
        return dict(doc["override"]) if doc else None

    async def for_groups(
        self, groups: set[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[M, str]]:
        """The settings in effect in each (tenant, group), with a digest of their content:
        groups and tenants with the same settings (the defaults) have the same digest."""
        ids = {t for t, _ in groups} | {f"{t}:{g}" for t, g in groups}
        docs = await self._load(sorted(ids))
        found = {}
        for tenant_id, group_id in groups:
            base, over = docs[tenant_id], docs[f"{tenant_id}:{group_id}"]
            version = f"{tenant_id}:{(base or {}).get('version')}"
            if over:
                version += f":{group_id}:{over.get('version')}"
            effective = self._effective.get(version)
            if effective is None:
                value = merged(self._value(base), over["override"] if over else None)
                content = hashlib.sha256(value.model_dump_json().encode()).hexdigest()
                effective = self._effective[version] = (value, content)
            found[(tenant_id, group_id)] = effective
        return found

    def _value(self, doc: Document | None) -> M:
        return self.model.model_validate(doc[self.field]) if doc else self.model()

    async def _load(self, ids: list[str]) -> dict[str, Document | None]:
        fresh = {i: hit[0] for i in ids if (hit := self._docs.get(i)) is not None}
        missing = [i for i in ids if i not in fresh]
        if missing:
            loaded = {d["_id"]: d async for d in self.collection.find({"_id": {"$in": missing}})}
            for i in missing:
                self._docs[i] = (loaded.get(i),)
                fresh[i] = loaded.get(i)
        return fresh
