"""Each tenant's time zone, the one its days are counted and asked in (`PUT /v1/stats/settings`);
the deployment's default until it sets one. A day already counted stays where it was counted:
a new zone applies to the events after it."""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from cachetools import TTLCache

from services.runtime.store import Store

TENANT_SETTINGS = "tenant_settings"
_FRESH_SECONDS = 30  # how soon every replica counts in a changed zone


class Zones:
    def __init__(self, store: Store, default: str) -> None:
        self.settings, self.default = store[TENANT_SETTINGS], ZoneInfo(default)
        self._known: TTLCache[str, ZoneInfo] = TTLCache(100_000, _FRESH_SECONDS)

    async def of(self, tenants: Iterable[str]) -> dict[str, ZoneInfo]:
        """The zone of each tenant: one read for those not known in the last seconds."""
        wanted = set(tenants)
        unknown = sorted(t for t in wanted if t not in self._known)
        if unknown:
            found: dict[str, str] = {
                d["_id"]: d.get("timezone", "")
                async for d in self.settings.find({"_id": {"$in": unknown}}, {"timezone": 1})
            }
            for t in unknown:
                self._known[t] = ZoneInfo(found[t]) if found.get(t) else self.default
        return {t: self._known.get(t, self.default) for t in wanted}

    async def zone(self, tenant: str) -> ZoneInfo:
        return (await self.of([tenant]))[tenant]

    async def set(self, tenant: str, timezone: str) -> None:
        await self.settings.update_one(
            {"_id": tenant}, {"$set": {"timezone": timezone}}, upsert=True
        )
        self._known.pop(tenant, None)
