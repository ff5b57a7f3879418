"""Rulesets in the moderation database: one per tenant (`_id = tenant`) and an override per
group (`_id = "{tenant}:{group}"`). A tenant without one has the zh-CN defaults. Reads for a
batch are one `$in` query, cached for a few seconds. Compiling the checks (the automaton of every
word list) takes tens of milliseconds, so it happens once per distinct ruleset: groups without an
override share their tenant's, and tenants with the same ruleset (the defaults) share one."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache, TTLCache
from pymongo.asynchronous.collection import AsyncCollection

from services.moderation.detect.content import ContentChecks
from services.moderation.detect.ruleset import Ruleset, merged
from services.runtime.instants import stamp
from services.runtime.store import Document

RULESETS = "rulesets"
_CACHE_SECONDS = 5.0
_DOCS_KEPT = 100_000  # tenant rulesets and group overrides read (or found missing)
_EFFECTIVE_KEPT = 10_000  # (tenant, override) versions: a ruleset and a digest each
_COMPILED_KEPT = 256  # distinct rulesets compiled: each holds its automaton


class Rulesets:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection
        # A viewer can ask for any group id: what is kept is bounded in size and in time.
        self._docs: TTLCache[str, tuple[Document | None]] = TTLCache(_DOCS_KEPT, _CACHE_SECONDS)
        # By the versions of the tenant's ruleset and the group's override, if any: the merged
        # ruleset and its content's digest, which keys the compiled checks.
        self._effective: LRUCache[str, tuple[Ruleset, str]] = LRUCache(_EFFECTIVE_KEPT)
        self._compiled: LRUCache[str, ContentChecks] = LRUCache(_COMPILED_KEPT)  # by content

    async def put_tenant(self, tenant_id: str, ruleset: Ruleset) -> None:
        await self._put(tenant_id, {"tenant_id": tenant_id, "ruleset": ruleset.model_dump()})

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

    async def tenant(self, tenant_id: str) -> Ruleset:
        [doc] = (await self._load([tenant_id])).values()
        return Ruleset.model_validate(doc["ruleset"]) if doc else Ruleset()

    async def override(self, tenant_id: str, group_id: str) -> dict[str, Any] | None:
        [doc] = (await self._load([f"{tenant_id}:{group_id}"])).values()
        return dict(doc["override"]) if doc else None

    async def for_groups(
        self, groups: set[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Ruleset, ContentChecks]]:
        """The effective ruleset of each (tenant, group), and its compiled checks."""
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
                tenant = Ruleset.model_validate(base["ruleset"]) if base else Ruleset()
                ruleset = merged(tenant, over["override"] if over else None)
                content = hashlib.sha256(ruleset.model_dump_json().encode()).hexdigest()
                effective = self._effective[version] = (ruleset, content)
            ruleset, content = effective
            found[(tenant_id, group_id)] = (ruleset, self._checks(ruleset, content))
        return found

    def _checks(self, ruleset: Ruleset, content: str) -> ContentChecks:
        checks = self._compiled.get(content)
        if checks is None:
            checks = self._compiled[content] = ContentChecks(ruleset)
        return checks

    async def _load(self, ids: list[str]) -> dict[str, Document | None]:
        fresh = {i: hit[0] for i in ids if (hit := self._docs.get(i)) is not None}
        missing = [i for i in ids if i not in fresh]
        if missing:
            loaded = {d["_id"]: d async for d in self.collection.find({"_id": {"$in": missing}})}
            for i in missing:
                self._docs[i] = (loaded.get(i),)
                fresh[i] = loaded.get(i)
        return fresh
