"""Activity groups' I/O: a document per group (`{tenant}:{group}`) with its steps' settings,
the steps done, and `due_at` (indexed), the instant of the next step.

The sweep produces a due step's actions, then records the step done over the `round` it read
(a PUT starts a new round): two replicas sweeping at once produce the same action ids, which
delivery does not repeat, and a replica that dies between the two is followed by the next
sweep, which produces the same actions again. The outcomes come from the action results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, IndexModel, UpdateOne

from services.campaign.activity import ActivityGroup, Step, due
from services.campaign.groups import Groups
from services.campaign.messages import outcome_of
from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import new_action
from services.runtime.instants import stamp
from services.runtime.refusals import Invalid, NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, page_after

ACTIVITY_GROUPS = "activity_groups"
INDEXES = [
    Indexes(ACTIVITY_GROUPS, [IndexModel([("due_at", ASCENDING)]), IndexModel([("tenant_id", 1)])])
]
_ACTION = "campaign:activity:"
_SWEEP_MAX = 200


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Activities:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, directory: Groups
    ) -> None:
        self.docs, self.directory = store[ACTIVITY_GROUPS], directory
        self.producer, self.topic = producer, settings.topic_actions
        self.zone, self.days = ZoneInfo(settings.default_timezone), settings.activity_dismiss_days

    def _steps(self, group: ActivityGroup) -> list[tuple[Step, datetime]]:
        return group.steps(self.zone, self.days)

    async def put(self, tenant_id: str, group_id: str, group: ActivityGroup) -> dict[str, Any]:
        """The group's activity (re)set: a new round, its steps from the start."""
        await self.directory.known(tenant_id, group_id)
        steps = self._steps(group)
        if steps[-1][1] < datetime.now(UTC):
            raise Invalid("ends_on", "the group would have been dismissed already")
        await self.docs.update_one(
            {"_id": f"{tenant_id}:{group_id}"},
            {
                "$set": {**group.model_dump(mode="json"), "done": [], "outcomes": {},
                         "due_at": stamp(steps[0][1])},
                "$inc": {"round": 1},
                "$setOnInsert": {"tenant_id": tenant_id, "group_id": group_id},
            },
            upsert=True,
        )  # fmt: skip
        return await self.get(tenant_id, group_id)

    async def get(self, tenant_id: str, group_id: str) -> dict[str, Any]:
        doc = await self.docs.find_one({"_id": f"{tenant_id}:{group_id}"})
        if doc is None:
            raise NotFound("no activity is set for this group", "group_id")
        return self._shown(doc)

    def _shown(self, doc: Document) -> dict[str, Any]:
        group = ActivityGroup.model_validate({k: doc[k] for k in ActivityGroup.model_fields})
        outcomes = doc.get("outcomes", {})
        steps = [
            {"step": step, "at": _iso(at), "done": step in doc["done"]}
            for step, at in self._steps(group)
        ]
        return {
            "group_id": doc["group_id"],
            **group.model_dump(mode="json"),
            "steps": steps,
            "outcomes": outcomes,  # wrap_up, farewell, dismiss: as their deliveries went
        }

    async def delete(self, tenant_id: str, group_id: str) -> None:
        done = await self.docs.delete_one({"_id": f"{tenant_id}:{group_id}"})
        if not done.deleted_count:
            raise NotFound("no activity is set for this group", "group_id")

    async def page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        after_id = f"{tenant_id}:{after}" if after else None
        docs, more = await page_after(self.docs, {"tenant_id": tenant_id}, after_id, limit)
        page = [self._shown(d) for d in docs]
        return {"groups": page, "next": page[-1]["group_id"] if more else None}

    async def sweep(self) -> None:
        now = datetime.now(UTC)
        found = self.docs.find({"due_at": {"$lte": stamp(now)}}, limit=_SWEEP_MAX)
        for doc in await found.to_list():
            await self._take(doc, now)

    async def _take(self, doc: Document, now: datetime) -> None:
        group = ActivityGroup.model_validate({k: doc[k] for k in ActivityGroup.model_fields})
        steps, following = due(self._steps(group), doc["done"], now)
        known = await self.directory.of(doc["tenant_id"], [doc["group_id"]])
        info = known.get(doc["group_id"])
        out: list[Outgoing] = []
        for step, worth in steps:
            if worth and info is not None and info.get("status") != "dismissed":
                out += self._actions(doc, info, group, step)
        await self.producer.send_many(out)
        taken = [step for step, _ in steps]
        record: Document = {"$set": {"done": [*doc["done"], *taken]}}
        if following is None:
            record["$unset"] = {"due_at": ""}
        else:
            record["$set"]["due_at"] = stamp(following)
        await self.docs.update_one({"$and": [{"_id": doc["_id"]}, {"round": doc["round"]}]}, record)

    def _actions(
        self, doc: Document, info: Document, group: ActivityGroup, step: Step
    ) -> list[Outgoing]:
        tenant_id, group_id = doc["tenant_id"], doc["group_id"]
        platform = common_pb2.Platform.Value(info.get("platform", "PLATFORM_SIM"))

        def action(name: str) -> actions_pb2.Action:
            action_id = f"{_ACTION}{doc['_id']}:{doc['round']}:{name}"
            return new_action(action_id, tenant_id, group_id, platform, "campaign")

        made = []
        if step == "wrap_up":
            wrap_up = action("wrap_up")
            wrap_up.send_text.text = group.wrap_up
            made.append(wrap_up)
        else:
            farewell, dismissal = action("farewell"), action("dismiss")
            farewell.send_text.text = group.farewell
            dismissal.dismiss_group.farewell = group.farewell
            made += [farewell, dismissal]
        return [outgoing(self.topic, group_key(tenant_id, group_id), a) for a in made]

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """Each step's action outcome, in the round it was of."""
        writes = []
        for r in results:
            if r.action_id.startswith(_ACTION):
                doc_id, round_, name = r.action_id.removeprefix(_ACTION).rsplit(":", 2)
                writes.append(UpdateOne(
                    {"$and": [{"_id": doc_id}, {"round": int(round_)}]},
                    {"$set": {f"outcomes.{name}": outcome_of(r)}},
                ))  # fmt: skip
        if writes:
            await self.docs.bulk_write(writes, ordered=True)
