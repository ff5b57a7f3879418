"""Fission tasks' counting (`fissions.py` keeps the tasks, codes and invitations): a sweep
counts the invitations whose stay is up, completes the inviters who reached their goal, and
gives the rewards due — a coupon under the issue key `fission:{task}`, points and a red packet
as a `reward_earned` event, which engagement books once, by its id. Each step is one
single-document conditional write, so a sweep that dies half way is finished by the next, on
either replica, without anything given twice."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from services.campaign.blacklist import Blacklist
from services.campaign.coupons import Coupons
from services.campaign.fission import FissionTask, not_counted
from services.campaign.members import Members
from services.gen.shequn.v1 import common_pb2
from services.runtime import metrics
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.envelope import new_event
from services.runtime.instants import stamp
from services.runtime.refusals import Conflict, NotFound
from services.runtime.store import Document

_SWEEP_MAX = 500


def _now() -> datetime:
    return datetime.now(UTC)


def task_of(doc: Document) -> FissionTask:
    return FissionTask.model_validate({k: doc[k] for k in FissionTask.model_fields})


class Counting:
    def __init__(
        self,
        collections: tuple[
            AsyncCollection[Document], AsyncCollection[Document], AsyncCollection[Document]
        ],
        parts: tuple[Coupons, Blacklist, Members],
        producer: Producer,
        topic: str,
    ) -> None:
        self.tasks, self.invites, self.progress = collections
        self.coupons, self.blacklist, self.members = parts
        self.producer, self.topic = producer, topic

    async def sweep(self) -> None:
        """Count the invitations whose stay is up, complete the inviters who reached their
        goal, and give the rewards due."""
        now = stamp(_now())
        due = await self.invites.find({"counts_at": {"$lte": now}}, limit=_SWEEP_MAX).to_list()
        due = await self._still_counting(due)
        if due:
            await self.invites.bulk_write(
                [
                    UpdateOne(
                        {"$and": [{"_id": d["_id"]}, {"state": "joined"}]},
                        {"$set": {"state": "counted", "counted_at": now}},
                    )
                    for d in due
                ],
                ordered=False,
            )
            await self.tally(due, now)
            # Only now: a sweep that died before the tally finds these again.
            await self.invites.bulk_write(
                [
                    UpdateOne({"$and": [{"_id": d["_id"]}, {"state": "counted"}]},
                              {"$unset": {"counts_at": ""}})
                    for d in due
                ],
                ordered=False,
            )  # fmt: skip
            metrics.FISSION_INVITEES.labels("counted").inc(len(due))
        owed = self.progress.find({"reward_due": {"$lte": now}}, limit=_SWEEP_MAX)
        for doc in await owed.to_list():
            await self._reward(doc)

    async def _still_counting(self, due: list[Document]) -> list[Document]:
        """The invitations that still count once their stay is up, judged again: an earlier
        event of the invitee may have come late from another group's partition (a returning
        member after all), or the invitee may have been blacklisted since."""
        keep, dropped = [], []
        for tenant_id in sorted({d["tenant_id"] for d in due}):
            mine = [d for d in due if d["tenant_id"] == tenant_id]
            people = await self.members.of(tenant_id, [d["invitee"] for d in mine])
            listed = await self.blacklist.of(
                tenant_id, {d["invitee"] for d in mine} | {d["inviter"] for d in mine}
            )
            for d in mine:
                reason = d["state"] == "joined" and not_counted(
                    inviter=d["inviter"], invitee=d["invitee"], joined_at=d["joined_at"],
                    first_at=people.get(d["invitee"], {}).get("first_at"),
                    blacklisted=listed, ended=False,
                )  # fmt: skip
                if reason:
                    dropped.append(UpdateOne(
                        {"$and": [{"_id": d["_id"]}, {"state": "joined"}]},
                        {"$set": {"state": "not_counted", "reason": reason},
                         "$unset": {"counts_at": ""}},
                    ))  # fmt: skip
                    metrics.FISSION_INVITEES.labels(reason).inc()
                else:
                    keep.append(d)
        if dropped:
            await self.invites.bulk_write(dropped, ordered=False)
        return keep

    async def tally(self, invitations: list[Document], now: int) -> None:
        """The inviters' counts, counted again from their invitations (the invitations are the
        truth, so a leave racing the sweep cannot leave a count wrong), and those who reached
        the goal completed, once."""
        inviters = {d["inviter_key"]: d for d in invitations}
        goals = {
            d["_id"]: d["goal"]
            async for d in self.tasks.find(
                {"_id": {"$in": sorted({d["task"] for d in invitations})}}
            )
        }
        writes = []
        for key, d in sorted(inviters.items()):
            count = await self.invites.count_documents(
                {"$and": [{"inviter_key": key}, {"state": "counted"}]}
            )
            writes.append(
                UpdateOne(
                    {"_id": key},
                    {
                        "$set": {"count": count},
                        "$setOnInsert": {
                            "tenant_id": d["tenant_id"],
                            "task": d["task"],
                            "inviter": d["inviter"],
                            "group_id": d["home"],
                        },
                    },
                    upsert=True,
                )
            )
            if d["task"] in goals and count >= goals[d["task"]]:
                writes.append(
                    UpdateOne(
                        {"$and": [{"_id": key}, {"completed_at": {"$exists": False}}]},
                        {"$set": {"completed_at": now, "reward_due": now}},
                    )
                )
        await self.progress.bulk_write(writes, ordered=True)  # fmt: skip

    async def _reward(self, progress: Document) -> None:
        """Give the inviter's reward: each part under an id of its own, so giving it again
        gives nothing twice."""
        task_doc = await self.tasks.find_one({"_id": progress["task"]})
        if task_doc is None:
            return
        task, tenant_id, inviter = task_of(task_doc), progress["tenant_id"], progress["inviter"]
        given: Document = {"state": "given"}
        if await self.blacklist.of(tenant_id, [inviter]):
            given = {"state": "refused", "reason": "blacklisted"}
        else:
            if task.reward.coupon_id:
                issue = f"fission:{task_doc['task_id']}"
                try:
                    found = await self.coupons.issue(
                        tenant_id, task.reward.coupon_id, inviter, issue
                    )
                    given["coupon_code"] = found["code"]
                except (Conflict, NotFound) as exc:
                    given["coupon_refused"] = str(exc)
            # Published even for a coupon alone: analytics counts the task completed by it.
            await self._earned(progress, task, task_doc["task_id"])
        await self.progress.update_one(
            {"_id": progress["_id"]}, {"$set": {"reward": given}, "$unset": {"reward_due": ""}}
        )
        metrics.FISSION_REWARDS.labels(given["state"]).inc()

    async def _earned(self, progress: Document, task: FissionTask, task_id: str) -> None:
        now = _now()
        tenant_id, group_id = progress["tenant_id"], progress["group_id"]
        event = new_event(
            f"campaign:fission:{task_id}:{progress['inviter']}",
            tenant_id, group_id, common_pb2.PLATFORM_UNSPECIFIED, now, now,
        )  # fmt: skip
        earned = event.reward_earned
        earned.member.id, earned.points = progress["inviter"], task.reward.points
        earned.red_packet = task.reward.red_packet
        earned.reason = f"邀请好友任务「{task.name}」完成"
        earned.livecode = task.livecode
        await self.producer.send_many([outgoing(self.topic, group_key(tenant_id, group_id), event)])
