"""Fission tasks' I/O (`fission.py` says the rules). Documents, each keyed by what it is of:

- the task, `{tenant}:{task}`;
- a member's code, `{tenant}:{task}:{member}` (asked again: the same code), and the code
  itself in the live codes (`LiveCodes.add_invite`), which the public scan fills the pool by;
- a scan of a code, `{tenant}:{join token}`, so that the join bringing the token back finds its
  inviter;
- an invitation, `{tenant}:{task}:{invitee}`: inserted by the first join through a code of the
  task, so an invitee is one inviter's only; `joined` until it has stayed (`counts_at`,
  indexed, is when), then `counted`, or `left`, or `not_counted` with the reason;
- an inviter's progress, `{tenant}:{task}:{inviter}`: how many of their invitations are
  counted (worked out again from the invitations whenever one changes: they are the truth),
  `completed_at` once the goal is reached (one conditional update), and `reward_due`
  (indexed) until the reward is given.

Counting the invitations whose stay is up, completing the inviters who reached the goal and
giving the rewards are `fission_counts.py`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from services.campaign.blacklist import Blacklist
from services.campaign.coupons import Coupons
from services.campaign.fission import NOT_COUNTED, FissionTask, new_invite_code, not_counted, rate
from services.campaign.fission_counts import Counting, task_of
from services.campaign.livecodes import LiveCodes, Scanned
from services.campaign.members import Members
from services.gen.shequn.v1 import events_pb2
from services.runtime import metrics
from services.runtime.bus import Producer
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.refusals import Conflict, NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, insert_new, page_after

TASKS = "fission_tasks"
CODES = "fission_codes"
SCANS = "fission_scans"
INVITES = "fission_invites"
PROGRESS = "fission_progress"
_BY_TASK = IndexModel([("task", ASCENDING)])
INDEXES = [
    Indexes(TASKS, [IndexModel([("tenant_id", ASCENDING)])]),
    Indexes(CODES, [_BY_TASK]),
    Indexes(SCANS, [_BY_TASK]),
    Indexes(
        INVITES,
        [
            _BY_TASK,
            IndexModel([("inviter_key", ASCENDING)]),
            IndexModel([("counts_at", ASCENDING)]),
        ],
    ),
    Indexes(PROGRESS, [_BY_TASK, IndexModel([("reward_due", ASCENDING)])]),
]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat().replace("+00:00", "Z")


class Fissions:
    def __init__(
        self,
        store: Store,
        producer: Producer,
        settings: Settings,
        livecodes: LiveCodes,
        coupons: Coupons,
        blacklist: Blacklist,
        members: Members,
    ) -> None:
        self.tasks, self.codes, self.scans = store[TASKS], store[CODES], store[SCANS]
        self.invites, self.progress = store[INVITES], store[PROGRESS]
        self.livecodes, self.coupons = livecodes, coupons
        self.blacklist, self.members = blacklist, members
        self.counting = Counting(
            (self.tasks, self.invites, self.progress),
            (coupons, blacklist, members),
            producer,
            settings.topic_events,
        )
        self.sweep = self.counting.sweep

    async def create(self, tenant_id: str, task: FissionTask, task_id: str) -> dict[str, Any]:
        await self.livecodes.get(tenant_id, task.livecode)  # 404 naming `code` if not the tenant's
        if task.reward.coupon_id:
            await self.coupons.template(tenant_id, task.reward.coupon_id)
        doc = {"_id": f"{tenant_id}:{task_id}", "tenant_id": tenant_id, "task_id": task_id,
               **task.model_dump(mode="json"), "created": stamp(_now())}  # fmt: skip
        if await insert_new(self.tasks, [doc]):
            raise Conflict("a task of this id exists", "task_id")
        return await self.get(tenant_id, task_id)

    async def _task(self, tenant_id: str, task_id: str) -> Document:
        doc = await self.tasks.find_one({"_id": f"{tenant_id}:{task_id}"})
        if doc is None:
            raise NotFound("no fission task of this id", "task_id")
        return doc

    async def get(self, tenant_id: str, task_id: str) -> dict[str, Any]:
        doc = await self._task(tenant_id, task_id)
        return {"task_id": task_id, **task_of(doc).model_dump(mode="json")}

    async def code(
        self, tenant_id: str, task_id: str, member_id: str, group_id: str | None
    ) -> dict[str, Any]:
        """The member's personal invite code of the task (the same one when asked again); 409
        when the task has ended or the member is blacklisted."""
        doc = await self._task(tenant_id, task_id)
        task = task_of(doc)
        if task.ended(_now()):
            raise Conflict("ended", "task_id")
        if await self.blacklist.of(tenant_id, [member_id]):
            raise Conflict("blacklisted", "member_id")
        mine = {"_id": f"{doc['_id']}:{member_id}", "code": new_invite_code(),
                "task": doc["_id"], "member_id": member_id, "group_id": group_id or "",
                "at": stamp(_now())}  # fmt: skip
        if await insert_new(self.codes, [mine]):
            found = await self.codes.find_one({"_id": mine["_id"]})
            mine = found or mine
        pool = await self.livecodes.get(tenant_id, task.livecode)
        home = mine["group_id"] or pool["groups"][0]["group_id"]
        # Made after the member's code document: a retry after a crash makes it then.
        await self.livecodes.add_invite(
            mine["code"], tenant_id, task.livecode, doc["_id"], member_id, home
        )
        return {"task_id": task_id, "member_id": member_id, "code": mine["code"],
                "scan": f"/v1/livecodes/{mine['code']}/scan"}  # fmt: skip

    async def scanned(self, scan: Scanned) -> None:
        """A scan of an invite code, kept for the funnel and for the join its token brings."""
        invite = scan.invite
        assert invite is not None
        doc = {"_id": f"{invite['tenant_id']}:{scan.join_token}", "task": invite["task"],
               "code": invite["_id"], "at": stamp(_now())}  # fmt: skip
        await insert_new(self.scans, [doc])

    async def joined(self, events: Sequence[events_pb2.Event]) -> None:
        """Joins through invite codes, attributed: an invitation per (task, invitee), the
        first join's; after `Members.record`, so `first_at` includes the batch's own events.
        An earlier event of the invitee still on its way from another group's partition is
        found out when the stay is up (`fission_counts`)."""
        joins = [e for e in events if e.WhichOneof("payload") == "member_joined"]
        joins = [e for e in joins if e.member_joined.member.id and _through(e)]
        if not joins:
            return
        tokens = [f"{e.tenant_id}:{e.member_joined.join_token}" for e in joins
                  if e.member_joined.join_token]  # fmt: skip
        by_token = {d["_id"]: d["code"] async for d in self.scans.find({"_id": {"$in": tokens}})}
        named: dict[int, str] = {}
        for i, e in enumerate(joins):
            joined = e.member_joined
            token = f"{e.tenant_id}:{joined.join_token}"
            named[i] = joined.invite_code or by_token.get(token, "") or joined.livecode
        codes = await self.livecodes.named({c for c in named.values() if c})
        attributed = [
            (e, codes[named[i]])
            for i, e in enumerate(joins)
            if named[i] in codes
            and codes[named[i]].get("task")
            and codes[named[i]]["tenant_id"] == e.tenant_id
        ]
        if not attributed:
            return
        task_ids = sorted({code["task"] for _, code in attributed})
        tasks = {d["_id"]: d async for d in self.tasks.find({"_id": {"$in": task_ids}})}
        invitations: list[Document] = []
        for tenant_id in sorted({e.tenant_id for e, _ in attributed}):
            mine = [(e, c) for e, c in attributed if e.tenant_id == tenant_id]
            who = {e.member_joined.member.id for e, _ in mine} | {c["inviter"] for _, c in mine}
            listed = await self.blacklist.of(tenant_id, who)
            people = await self.members.of(tenant_id, [e.member_joined.member.id for e, _ in mine])
            for e, code in mine:
                task_doc = tasks.get(code["task"])
                if task_doc is None:
                    continue
                invitations.append(
                    _invitation(e, code, task_of(task_doc), listed, people)
                )  # fmt: skip
        taken = await insert_new(self.invites, invitations)
        placed = [d for d in invitations if d["_id"] not in taken]
        placed += await self._earlier(
            [d for d in invitations if d["_id"] in taken]
        )  # fmt: skip
        for doc in placed:
            metrics.FISSION_INVITEES.labels(doc.get("reason") or "joined").inc()
        # Each invitee's leave looks up the tasks counting them here.
        await self.members.invited(
            [(d["tenant_id"], d["invitee"], d["task"]) for d in placed if d["state"] == "joined"]
        )

    async def _earlier(self, collided: list[Document]) -> list[Document]:
        """Of invitations whose invitee the task has already, those of an earlier join: they
        take the invitee over (the first join wins, whichever partition was read first), while
        the stay of the one there is not up. A redelivery, or a later join, changes nothing."""
        if not collided:
            return []
        ids = [d["_id"] for d in collided]
        there = {d["_id"]: d async for d in self.invites.find({"_id": {"$in": ids}})}
        placed = []
        for doc in collided:
            found = there.get(doc["_id"])
            if (
                found is None
                or found["state"] not in ("joined", "not_counted")
                or doc["joined_at"] >= found["joined_at"]
            ):
                continue
            took = await self.invites.update_one(
                {"$and": [{"_id": doc["_id"]}, {"joined_at": found["joined_at"]},
                          {"state": found["state"]}]},
                {"$set": {k: v for k, v in doc.items() if k != "_id"},
                 "$unset": {k: "" for k in ("reason", "counts_at") if k not in doc}},
            )  # fmt: skip
            if took.modified_count:
                placed.append(doc)
        return placed

    async def left(self, events: Sequence[events_pb2.Event]) -> None:
        """Invitees who left the group they were invited to before their stay was up: not
        counted, or uncounted if the sweep counted them before the leave arrived."""
        leaves = [
            e
            for e in events
            if e.WhichOneof("payload") == "member_left" and e.member_left.member.id
        ]
        if not leaves:
            return
        candidates: dict[str, events_pb2.Event] = {}
        for tenant_id in sorted({e.tenant_id for e in leaves}):
            mine = [e for e in leaves if e.tenant_id == tenant_id]
            people = await self.members.of(tenant_id, [e.member_left.member.id for e in mine])
            for e in mine:
                for task_key in people.get(e.member_left.member.id, {}).get("invited", {}).values():
                    candidates.setdefault(f"{task_key}:{e.member_left.member.id}", e)
        if not candidates:
            return
        gone = []
        async for doc in self.invites.find({"_id": {"$in": sorted(candidates)}}):
            e = candidates[doc["_id"]]
            at = stamp(occurred_at(e))
            if (
                e.group_id == doc["group_id"]
                and doc["joined_at"] <= at < doc["stays_until"]
                and doc["state"] in ("joined", "counted")
            ):
                gone.append(doc)
                await self.invites.update_one(
                    {"$and": [{"_id": doc["_id"]}, {"state": doc["state"]}]},
                    {"$set": {"state": "left", "left_at": at}, "$unset": {"counts_at": ""}},
                )
                metrics.FISSION_INVITEES.labels("left").inc()
        if counted := [d for d in gone if d["state"] == "counted"]:
            await self.counting.tally(counted, stamp(_now()))

    async def funnel(self, tenant_id: str, task_id: str) -> dict[str, Any]:
        """Codes issued → scans → joins → counted → completed, and why joins did not count."""
        key = (await self._task(tenant_id, task_id))["_id"]
        codes = await self.codes.count_documents({"task": key})
        scans = await self.scans.count_documents({"task": key})
        states: dict[str, int] = {}
        async for row in await self.invites.aggregate(
            [{"$match": {"task": key}}, {"$group": {"_id": "$reason", "n": {"$sum": 1}}}]
        ):
            states[row["_id"] or ""] = row["n"]
        joins = sum(states.values())
        counted = await self.invites.count_documents(
            {"$and": [{"task": key}, {"state": "counted"}]}
        )
        left = await self.invites.count_documents({"$and": [{"task": key}, {"state": "left"}]})
        completed = await self.progress.count_documents(
            {"$and": [{"task": key}, {"completed_at": {"$exists": True}}]}
        )
        return {
            "task_id": task_id,
            "codes_issued": codes,
            "scans": scans,
            "joins": joins,
            "counted": counted,
            "completed": completed,
            "not_counted": {r: states.get(r, 0) for r in NOT_COUNTED} | {"left": left},
            "join_rate": rate(joins, scans),
            "completion_rate": rate(completed, joins),
        }

    async def inviters(
        self, tenant_id: str, task_id: str, limit: int, after: str | None
    ) -> dict[str, Any]:
        """The task's inviters with a counted invitee, by member id, a page at a time."""
        key = (await self._task(tenant_id, task_id))["_id"]
        after_id = f"{key}:{after}" if after else None
        docs, more = await page_after(self.progress, {"task": key}, after_id, limit)
        page = [
            {
                "member_id": d["inviter"],
                "counted": d.get("count", 0),
                "completed_at": _iso(d["completed_at"]) if d.get("completed_at") else None,
                "reward": d.get("reward", {"state": "due"} if d.get("reward_due") else None),
            }
            for d in docs
        ]
        return {"inviters": page, "next": page[-1]["member_id"] if more else None}

    async def page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        """The tenant's fission tasks, by id."""
        after_id = f"{tenant_id}:{after}" if after else None
        docs, more = await page_after(self.tasks, {"tenant_id": tenant_id}, after_id, limit)
        page = [{"task_id": d["task_id"], **task_of(d).model_dump(mode="json")} for d in docs]
        return {"tasks": page, "next": page[-1]["task_id"] if more else None}


def _through(e: events_pb2.Event) -> bool:
    joined = e.member_joined
    return bool(joined.invite_code or joined.join_token or joined.livecode)


def _invitation(
    e: events_pb2.Event,
    code: Document,
    task: FissionTask,
    blacklisted: set[str],
    people: dict[str, Document],
) -> Document:
    invitee, joined = e.member_joined.member.id, occurred_at(e)
    at = stamp(joined)
    stays_until = stamp(joined + task.stay())
    reason = not_counted(
        inviter=code["inviter"],
        invitee=invitee,
        joined_at=at,
        first_at=people.get(invitee, {}).get("first_at"),
        blacklisted=blacklisted,
        ended=task.ended(joined),
    )
    doc: Document = {
        "_id": f"{code['task']}:{invitee}",
        "tenant_id": e.tenant_id,
        "task": code["task"],
        "inviter": code["inviter"],
        "inviter_key": f"{code['task']}:{code['inviter']}",
        "home": code.get("group_id") or e.group_id,
        "invitee": invitee,
        "code": code["_id"],
        "group_id": e.group_id,
        "joined_at": at,
        "stays_until": stays_until,
        "state": "not_counted" if reason else "joined",
    }
    if reason:
        doc["reason"] = reason
    else:
        doc["counts_at"] = stays_until
    return doc
