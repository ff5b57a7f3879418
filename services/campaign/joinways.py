"""WeCom join ways (加入群聊) of live codes: on WeCom people scan the platform's own QR code, not
Shequn's page, so a live code with WeCom groups keeps a join way — its first five groups with
room (`livecode.join_way_groups`) — and rotates the list as joins fill groups and leaves free
them, from the events, not by polling. One document per code (`join_ways`, `_id` the code):
the groups synced, the config id and QR code WeCom gave, and whether a sync is in flight.

A sync is a `sync_join_way` action (an add while there is no config id, then updates), its id
made of the code and a version. While one is in flight no other is sent (a second add would
make a second join way); its result records the config id and QR code, and the groups are
compared again then. The join way's state is the code's name, which comes back with each
member who joins through it (ingestion reads it off the group's details) as the join's
live code."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from services.campaign.groups import Groups
from services.campaign.livecode import STATE_MOST, join_way_groups
from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.envelope import new_action
from services.runtime.settings import Settings
from services.runtime.store import Document, Store, insert_new

JOIN_WAYS = "join_ways"
_ACTION = "campaign:joinway:"
_WECOM = "PLATFORM_WECOM"


class JoinWays:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, directory: Groups
    ) -> None:
        self.ways, self.directory = store[JOIN_WAYS], directory
        self.producer, self.topic = producer, settings.topic_actions

    async def keep(self, codes: Iterable[Document], taken: dict[str, int]) -> None:
        """Bring each WeCom live code's join way in line with its pool (`taken`: members and
        reservations per "{tenant}:{group}")."""
        for code in codes:
            tenant_id, pool = code["tenant_id"], code["groups"]
            platforms = await self.directory.of(tenant_id, pool)
            if not any(d.get("platform") == _WECOM for d in platforms.values()):
                continue
            wecom = [g for g in pool if platforms.get(g, {}).get("platform") == _WECOM]
            mine = {g: taken.get(f"{tenant_id}:{g}", 0) for g in wecom}
            await self._sync(code, join_way_groups(wecom, mine, code["capacity"]))

    async def _sync(self, code: Document, wanted: list[str]) -> None:
        doc = await self.ways.find_one({"_id": code["_id"]})
        if doc is not None and (doc.get("in_flight") or doc.get("groups") == wanted):
            return
        version = (doc or {}).get("version", 0) + 1
        claim = {"groups": wanted, "version": version, "in_flight": True,
                 "tenant_id": code["tenant_id"]}  # fmt: skip
        if doc is None:
            if await insert_new(self.ways, [{"_id": code["_id"], **claim}]):
                return  # another replica made it first
        else:
            won = await self.ways.update_one(
                {"$and": [{"_id": code["_id"]}, {"version": doc["version"]}]}, {"$set": claim}
            )
            if not won.modified_count:
                return
        await self._send(code, {**(doc or {}), **claim})

    async def _send(self, code: Document, way: Document) -> None:
        first = way["groups"][0]
        action = new_action(
            f"{_ACTION}{code['_id']}:{way['version']}", code["tenant_id"], first,
            common_pb2.PLATFORM_WECOM, "campaign",
        )  # fmt: skip
        sync = action.sync_join_way
        sync.config_id = way.get("config_id", "")
        sync.group_ids.extend(way["groups"])
        sync.state = code["_id"] if len(code["_id"]) <= STATE_MOST else ""
        sync.remark = code["_id"][:30]
        if code.get("room_base_name"):
            sync.auto_create_room, sync.room_base_name = True, code["room_base_name"]
            sync.room_base_id = 1
        key = group_key(code["tenant_id"], first)
        await self.producer.send_many([outgoing(self.topic, key, action)])

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> set[str]:
        """Record each sync's outcome; the codes whose pool may have moved on meanwhile, to
        be compared again."""
        again = set()
        for r in results:
            if not r.action_id.startswith(_ACTION):
                continue
            code, version = r.action_id.removeprefix(_ACTION).rsplit(":", 1)
            outcome: Document = {"$set": {"in_flight": False}}
            if r.status == actions_pb2.DELIVERY_STATUS_DELIVERED:
                outcome["$set"] |= {"config_id": r.message_id, "qr_code": r.link, "reason": ""}
            else:
                # Not synced: the groups go, so that the next change of the pool sends again.
                outcome["$set"]["reason"] = r.reason or "failed"
                outcome["$unset"] = {"groups": ""}
            done = await self.ways.update_one(
                {"$and": [{"_id": code}, {"version": int(version)}]}, outcome
            )
            if done.modified_count:
                again.add(code)
        return again

    async def shown(self, code: str) -> dict[str, Any] | None:
        doc = await self.ways.find_one({"_id": code})
        if doc is None:
            return None
        state = "syncing" if doc.get("in_flight") else "failed" if doc.get("reason") else "synced"
        return {k: doc.get(k) for k in ("config_id", "groups", "qr_code", "reason")} | {
            "state": state
        }
