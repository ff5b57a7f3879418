"""The tier ladder's I/O: one ladder per tenant (`{tenant}`), and the invitations it sends. A
`member_tier_changed` event (engagement's, in the group of the order that changed the tier)
that lifts a member to a rung sends them the rung's invitation in that group, @mentioning them,
once per member and rung (the action's id says both) — not to a blacklisted member, nor to
one already in a group of the rung's series."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.campaign.blacklist import Blacklist
from services.campaign.groups import Groups
from services.campaign.ladder import Ladder, invitation, invited_to
from services.campaign.livecodes import LiveCodes
from services.campaign.members import Members
from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import new_action
from services.runtime.refusals import NotFound
from services.runtime.settings import Settings
from services.runtime.store import Store

LADDERS = "tier_ladders"


class Ladders:
    def __init__(
        self,
        store: Store,
        producer: Producer,
        settings: Settings,
        parts: tuple[Groups, LiveCodes, Members, Blacklist],
    ) -> None:
        self.ladders = store[LADDERS]
        self.directory, self.livecodes, self.members, self.blacklist = parts
        self.producer, self.topic = producer, settings.topic_actions
        self.public = settings.public_url.rstrip("/")

    async def put(self, tenant_id: str, ladder: Ladder) -> dict[str, Any]:
        for i, rung in enumerate(ladder.rungs):
            try:
                await self.livecodes.get(tenant_id, rung.livecode)
            except NotFound:
                raise NotFound("no live code of this name", f"rungs.{i}.livecode") from None
        body = ladder.model_dump()
        await self.ladders.update_one({"_id": tenant_id}, {"$set": body}, upsert=True)
        return body

    async def get(self, tenant_id: str) -> dict[str, Any]:
        doc = await self.ladders.find_one({"_id": tenant_id})
        if doc is None:
            raise NotFound("no tier ladder is set")
        return Ladder.model_validate({k: doc[k] for k in Ladder.model_fields}).model_dump()

    async def follow(self, events: Sequence[events_pb2.Event]) -> None:
        changed = [
            e
            for e in events
            if e.WhichOneof("payload") == "member_tier_changed" and e.member_tier_changed.member.id
        ]
        if not changed:
            return
        ladders = {
            d["_id"]: Ladder.model_validate({k: d[k] for k in Ladder.model_fields})
            async for d in self.ladders.find(
                {"_id": {"$in": sorted({e.tenant_id for e in changed})}}
            )
        }
        out: list[Outgoing] = []
        for e in changed:
            if (ladder := ladders.get(e.tenant_id)) is not None:
                out += await self._invite(e, ladder)
        await self.producer.send_many(out)

    async def _invite(self, e: events_pb2.Event, ladder: Ladder) -> list[Outgoing]:
        change, tenant_id = e.member_tier_changed, e.tenant_id
        rung = invited_to(ladder, change.tier, change.previous)
        member = change.member.id
        if rung is None or await self.blacklist.of(tenant_id, [member]):
            return []
        series = [d["group_id"] for d in await self.directory.all_of(tenant_id)
                  if rung.tag in (d.get("tags") or [])]  # fmt: skip
        if await self.members.in_any(tenant_id, member, series):
            return []
        group = (await self.directory.of(tenant_id, [e.group_id])).get(e.group_id)
        if group is None:
            return []
        action = new_action(
            f"campaign:tier:{tenant_id}:{member}:{rung.tag}", tenant_id, e.group_id,
            common_pb2.Platform.Value(group["platform"]), "campaign",
        )  # fmt: skip
        link = f"{self.public}/v1/livecodes/{rung.livecode}/scan"
        text = invitation(ladder, rung, change.member.name or member, change.tier, link)
        action.send_text.text = text
        action.send_text.mentions.append(member)
        metrics.TIER_INVITATIONS.inc()
        return [outgoing(self.topic, group_key(tenant_id, e.group_id), action)]
