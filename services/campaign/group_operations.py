"""What happens to groups and series, as campaign's HTTP and gRPC APIs both do it: activity
groups, handovers, group notices and the tier ladder. One place for each operation and what it
refuses (`runtime.refusals`), each edge only translating."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.campaign.activities import Activities
from services.campaign.activity import ActivityGroup
from services.campaign.handover import Handover
from services.campaign.handovers import Handovers
from services.campaign.ladder import Ladder
from services.campaign.ladders import Ladders
from services.campaign.notice import Notice
from services.campaign.notices import Notices
from services.runtime.refusals import valid
from services.runtime.wellformed import key_part, page_args


@dataclass(frozen=True)
class GroupOperations:
    activities: Activities
    handovers: Handovers
    notices: Notices
    ladders: Ladders

    async def set_activity(self, tenant_id: str, group_id: str, body: Any) -> dict[str, Any]:
        group = valid(ActivityGroup, body)
        return await self.activities.put(tenant_id, key_part("group_id", group_id), group)

    async def activity(self, tenant_id: str, group_id: str) -> dict[str, Any]:
        return await self.activities.get(tenant_id, key_part("group_id", group_id))

    async def end_activity(self, tenant_id: str, group_id: str) -> None:
        await self.activities.delete(tenant_id, key_part("group_id", group_id))

    async def activities_page(
        self, tenant_id: str, limit: int, after: str | None
    ) -> dict[str, Any]:
        page_args(limit, after)
        return await self.activities.page(tenant_id, limit, after)

    async def start_handover(self, tenant_id: str, body: Any) -> dict[str, Any]:
        return await self.handovers.start(tenant_id, valid(Handover, body))

    async def handovers_page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        page_args(limit, after)
        return await self.handovers.page(tenant_id, limit, after)

    async def handover(self, tenant_id: str, handover_id: str) -> dict[str, Any]:
        return await self.handovers.get(tenant_id, key_part("handover_id", handover_id))

    async def put_notice(self, tenant_id: str, tag: str, body: Any) -> dict[str, Any]:
        return await self.notices.put(tenant_id, key_part("tag", tag), valid(Notice, body))

    async def notice(self, tenant_id: str, tag: str) -> dict[str, Any]:
        return await self.notices.get(tenant_id, key_part("tag", tag))

    async def drift(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        page_args(limit, after)
        return await self.notices.drifted(tenant_id, limit, after)

    async def put_ladder(self, tenant_id: str, body: Any) -> dict[str, Any]:
        return await self.ladders.put(tenant_id, valid(Ladder, body))

    async def ladder(self, tenant_id: str) -> dict[str, Any]:
        return await self.ladders.get(tenant_id)
