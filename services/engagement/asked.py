"""Quizzes and polls, I/O. A question is one document; while it is open it carries `open_in`
(its group) and `closes_due`, both indexed, so a batch finds its groups' open questions in one
query, and the closing sweep finds the due ones, without either cost growing with the questions
of the past.

A quiz is won by one conditional update (open → won): of concurrent correct answers, the first
that lands wins, and only its points are booked and its announcement sent. A won quiz stays
findable by its group until its closing time, so that its winning message, read again after a
crash, books and says what it had not; the closing sweep does the same once more. A vote is a
document per (poll, member), inserted once: a member's first vote counts. Whatever was won or
closed before a crash is booked and announced again by the same source and action ids, which
change nothing twice."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, IndexModel

from services.engagement.directory import Directory
from services.engagement.points import Grant, Points
from services.engagement.questions import (
    Poll,
    Quiz,
    is_correct,
    poll_results,
    poll_text,
    quiz_text,
    quiz_unanswered,
    quiz_won,
    vote_of,
)
from services.engagement.settings import TenantSettings
from services.gen.shequn.v1 import events_pb2
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import new_action, occurred_at
from services.runtime.instants import stamp
from services.runtime.refusals import NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, insert_new

QUESTIONS = "questions"
VOTES = "votes"
INDEXES = [
    Indexes(
        QUESTIONS, [IndexModel([("open_in", ASCENDING)]), IndexModel([("closes_due", ASCENDING)])]
    ),
    Indexes(VOTES, [IndexModel([("question", ASCENDING)])]),
]


class Questions:
    def __init__(
        self,
        store: Store,
        points: Points,
        producer: Producer,
        settings: Settings,
        configured: TenantSettings,
    ) -> None:
        self.questions, self.votes = store[QUESTIONS], store[VOTES]
        self.directory = Directory(store)
        self.points, self.producer, self.configured = points, producer, configured
        self.topic, self.tz = settings.topic_actions, ZoneInfo(settings.default_timezone)

    async def ask(self, tenant_id: str, asked: Quiz | Poll) -> str:
        """Put a question to its group; returns its id."""
        platform = await self.directory.platform(tenant_id, asked.group_id)
        kind = "quiz" if isinstance(asked, Quiz) else "poll"
        question_id = f"{kind[0]}-{secrets.token_hex(6)}"
        where = f"{tenant_id}:{asked.group_id}"
        doc = {
            "_id": f"{tenant_id}:{question_id}",
            "tenant_id": tenant_id,
            "kind": kind,
            "platform": platform,
            "spec": asked.model_dump(mode="json"),
            "state": "open",
            "open_in": where,
            "closes_due": stamp(asked.closes_at),
            "created": stamp(datetime.now(UTC)),
        }
        await self.questions.insert_one(doc)
        [(settings, _)] = (await self.configured.for_groups({(tenant_id, asked.group_id)})).values()
        tz = settings.zone(self.tz)
        text = quiz_text(asked, tz) if isinstance(asked, Quiz) else poll_text(asked, tz)
        await self.producer.send_many([self._say(doc, "asked", text)])
        return question_id

    async def get(self, tenant_id: str, kind: str, question_id: str) -> dict[str, Any]:
        doc = await self.questions.find_one({"_id": f"{tenant_id}:{question_id}", "kind": kind})
        if doc is None:
            raise NotFound(f"no {kind} of this id")
        spec, state = doc["spec"], doc["state"]
        found: dict[str, Any] = {f"{kind}_id": question_id, **spec, "state": state}
        if kind == "quiz":
            found["winner"] = doc.get("winner")
            if state == "open":
                del found["answers"]  # not while it can be won
        elif state != "open" or not spec["hide_results"]:
            counts = doc.get("counts") or await self._count(doc["_id"])
            found["results"] = [
                {"option": o, "votes": int(counts.get(str(i), 0))}
                for i, o in enumerate(spec["options"])
            ]
        return found

    async def _count(self, key: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        async for vote in self.votes.find({"question": key}, {"option": 1}):
            counts[str(vote["option"])] = counts.get(str(vote["option"]), 0) + 1
        return counts

    async def handle(self, messages: Sequence[events_pb2.Event]) -> None:
        """A batch's messages: answers to open quizzes, votes in open polls."""
        if not messages:
            return
        groups = sorted({f"{e.tenant_id}:{e.group_id}" for e in messages})
        out: list[Outgoing] = []
        async for doc in self.questions.find({"open_in": {"$in": groups}}):
            here = [e for e in messages if f"{e.tenant_id}:{e.group_id}" == _where(doc)]
            if doc["kind"] == "quiz":
                out += await self._answered(doc, here)
            else:
                await self._voted(doc, here)
        await self.producer.send_many(out)

    async def _answered(self, doc: Document, messages: list[events_pb2.Event]) -> list[Outgoing]:
        quiz = Quiz.model_validate(doc["spec"])
        correct = sorted(
            (e for e in messages if is_correct(e.message_posted.message.text, quiz.answers)),
            key=lambda e: stamp(occurred_at(e)),
        )
        if not correct:
            return []
        first = correct[0]
        if doc["state"] == "open":
            member = first.message_posted.member
            winner = {"member_id": member.id, "name": member.name, "event_id": first.event_id}
            await self.questions.update_one(
                {"$and": [{"_id": doc["_id"]}, {"state": "open"}]},
                {
                    "$set": {"state": "won", "winner": winner, "won_at": stamp(occurred_at(first))},
                },
            )
            doc = await self.questions.find_one({"_id": doc["_id"]}) or doc
        winner = doc.get("winner") or {}
        if not any(e.event_id == winner.get("event_id") for e in correct):
            return []  # another answer won first
        return [await self._award(doc)]

    async def _award(self, doc: Document) -> Outgoing:
        """Book a won quiz's points and say who won (both once, however often this runs)."""
        quiz, winner = Quiz.model_validate(doc["spec"]), doc["winner"]
        source = f"quiz:{doc['_id'].split(':', 1)[1]}"
        at = datetime.fromtimestamp(doc["won_at"] / 1e6, UTC)
        member = winner["member_id"]
        await self.points.apply(
            [Grant(doc["tenant_id"], member, source, quiz.points, "有奖竞猜", at)]
        )
        text = quiz_won(winner["name"] or member, quiz.answers[0], quiz.points)
        return self._say(doc, "won", text, [member])

    async def _voted(self, doc: Document, messages: list[events_pb2.Event]) -> None:
        poll = Poll.model_validate(doc["spec"])
        votes: dict[str, Document] = {}
        for e in sorted(messages, key=lambda e: stamp(occurred_at(e))):
            member = e.message_posted.member.id
            option = vote_of(e.message_posted.message.text, poll.options)
            if option is not None and member not in votes:
                votes[member] = {
                    "_id": f"{doc['_id']}:{member}",
                    "question": doc["_id"],
                    "option": option,
                    "event_id": e.event_id,
                    "at": stamp(occurred_at(e)),
                }
        await insert_new(self.votes, list(votes.values()))

    async def close_due(self) -> None:
        """Close the questions whose time is up, and announce how they ended."""
        now = stamp(datetime.now(UTC))
        due = [d async for d in self.questions.find({"closes_due": {"$lte": now}}, limit=200)]
        out = []
        for doc in due:
            if doc["state"] == "open":
                counts = await self._count(doc["_id"]) if doc["kind"] == "poll" else None
                await self.questions.update_one(
                    {"$and": [{"_id": doc["_id"]}, {"state": "open"}]},
                    {"$set": {"state": "closed", "counts": counts}, "$unset": {"open_in": ""}},
                )
                doc = await self.questions.find_one({"_id": doc["_id"]}) or doc
            if doc["state"] == "won":
                out.append(await self._award(doc))  # again: a crash may have come between
                continue
            spec = doc["spec"]
            if doc["kind"] == "poll":
                tally = {int(k): int(v) for k, v in (doc.get("counts") or {}).items()}
                text = poll_results(spec["options"], tally)
            else:
                text = quiz_unanswered(spec["answers"])
            out.append(self._say(doc, "closed", text))
        await self.producer.send_many(out)
        if due:
            ids = [d["_id"] for d in due]
            await self.questions.update_many(
                {"_id": {"$in": ids}, "state": {"$in": ["won", "closed"]}},
                {"$unset": {"closes_due": "", "open_in": ""}},
            )

    def _say(self, doc: Document, step: str, text: str, mentions: Sequence[str] = ()) -> Outgoing:
        tenant_id, group_id = doc["tenant_id"], doc["spec"]["group_id"]
        action_id = f"engagement:{doc['kind']}:{doc['_id'].split(':', 1)[1]}:{step}"
        action = new_action(action_id, tenant_id, group_id, doc["platform"], "engagement")
        action.send_text.text = text
        action.send_text.mentions.extend(mentions)
        return outgoing(self.topic, group_key(tenant_id, group_id), action)


def _where(doc: Document) -> str:
    return f"{doc['tenant_id']}:{doc['spec']['group_id']}"
