"""Outbound delivery: the consumer of shequn.actions.v1. It never waits inside a batch.

Each action has a ledger document keyed by its id that moves `claimed` → `delivering` →
`delivered | failed | unsupported`:
- a batch claims its actions with one insert; the ledger is read only for those already in it
  (a redelivery): finished ones are answered again from it, which changes nothing. New ones are
  queued behind their group's (`dispatch.py`), then given a pending timeline entry; the batch is
  then done, and its offsets are committed up to the first action still waiting
  (`runtime/holds.py`);
- each group's actions go out in order, when the platform's pacing allows (`adapter.wait`);
  only then is the action switched from `claimed` to `delivering`, by a conditional update, so
  that of two consumers only one ever calls the platform; right after, its result is written,
  alongside the group's next action (a warning does not wait for the record of the deletion
  before it);
- a transient failure is tried again after a backoff or the wait the platform asked for (at
  most SHEQUN_DELIVERY_MAX_RETRY_AFTER_SECONDS; a platform asking for more fails the action),
  as a due time, not a sleep; an action not sent within SHEQUN_DELIVERY_MAX_WAIT_SECONDS fails;
- results go to the timeline and to shequn.action-results.v1, then the offset is released.

An action found `delivering` was in flight when a gateway stopped. Whether the platform carried
it out cannot be known, so it is reported `failed` and not tried again: nothing is ever
delivered twice. A `claimed` action was never attempted (or only failed without reaching the
platform) and is simply delivered."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.ingestion.adapters import Adapter, Outcome, failed
from services.ingestion.dispatch import Background, Dispatcher, Waiting
from services.ingestion.timeline import action_entry, action_entry_id
from services.runtime import metrics
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.coalesce import Coalesced
from services.runtime.consumer import ConsumerSpec, Holds, Pace, Record
from services.runtime.envelope import decode_checked
from services.runtime.instants import stamp
from services.runtime.logs import log_context
from services.runtime.settings import Settings
from services.runtime.store import Document, Store, insert_new, kept_for

log = logging.getLogger(__name__)
DELIVERIES = "deliveries"
_PARALLEL_GROUPS = 32
_RECORD_RETRY_SECONDS = (1.0, 30.0)  # first and longest wait before writing a result again
IN_FLIGHT_AT_RESTART = "outcome unknown: the gateway stopped during delivery; not retried"

Finished = tuple[actions_pb2.Action, Outcome, int]


def decode_action(raw: bytes) -> actions_pb2.Action:
    return decode_checked(actions_pb2.Action, raw, ("action_id", "tenant_id", "group_id"), "kind")


def _key(action: actions_pb2.Action) -> str:
    return f"{action.tenant_id}:{action.action_id}"


class Delivery:
    def __init__(
        self,
        store: Store,
        timeline: AsyncCollection[Document],
        producer: Producer,
        settings: Settings,
        adapters: Mapping[int, Adapter],
    ) -> None:
        self.ledger = store[DELIVERIES]
        self.timeline = timeline
        self.producer = producer
        self.adapters = adapters
        self.results_topic = settings.topic_action_results
        self.attempts = settings.delivery_attempts
        self.backoff = settings.delivery_backoff_ms / 1000
        self.longest_retry_after = settings.delivery_max_retry_after_seconds
        self.timeline_kept = timedelta(days=settings.timeline_retention_days)
        self.longest_wait = settings.delivery_max_wait_seconds
        self.holds = Holds(settings.delivery_max_waiting)
        self.dispatcher = Dispatcher(self._step, _PARALLEL_GROUPS)
        self.recording = Background(patience=10.0)
        # Each group delivers in a task of its own; their ledger writes and results go
        # together, one request for every group at that step.
        self._starts = Coalesced(self._start_all)
        self._finishes = Coalesced(self._finish_all)
        self._results = Coalesced(self._record_all)

    def consumer(self, settings: Settings) -> ConsumerSpec[actions_pb2.Action]:
        return ConsumerSpec(
            "ingestion-delivery",
            [settings.topic_actions],
            decode_action,
            self.handle,
            lambda a: {"tenant_id": a.tenant_id, "action_id": a.action_id},
            revoked=self.drain,
            holds=self.holds,
            pace=Pace.REACTS,
        )

    async def handle(self, records: Sequence[Record[actions_pb2.Action]]) -> None:
        first: dict[str, Record[actions_pb2.Action]] = {}
        for r in records:
            key = _key(r.value)
            if key in self.dispatcher or not self.holds.owns(TopicPartition(r.topic, r.partition)):
                # Queued here already (the same action twice on the topic): its first copy
                # holds the partition back. Or the partition went elsewhere while this batch
                # was in hand: its next owner reads it again.
                continue
            first.setdefault(key, r)
        now = time.time()
        there = await self._claim([r.value for r in first.values()], now)
        known = {}
        if there:
            known = {d["_id"]: d async for d in self.ledger.find({"_id": {"$in": sorted(there)}})}
        answered: list[Finished] = []  # finished before: the same result again
        interrupted: list[Finished] = []  # in flight when a gateway stopped
        waiting: list[Waiting] = []
        for key, record in first.items():
            action, doc = record.value, known.get(key)
            tp = TopicPartition(record.topic, record.partition)
            status = doc["status"] if doc else None
            if status is None or status == "claimed":
                claimed = doc["claimed_at"] / 1e6 if doc and doc.get("claimed_at") else now
                attempts = int(doc.get("attempts", 0)) if doc else 0
                waiting.append(Waiting(key, action, tp, record.offset, claimed, attempts))
            elif status == "delivering":
                interrupted.append((action, failed(IN_FLIGHT_AT_RESTART), 1))
            else:
                outcome = Outcome(status, doc.get("reason", "") if doc else "")
                answered.append((action, outcome, doc.get("attempts", 0) if doc else 0))
        claimed = [w.action for w in waiting if w.key not in there]
        for w in waiting:
            if self.dispatcher.add(w):
                self.holds.hold(w.tp, w.offset)
        # Off the warning's path: written after the groups may start. An insert only, so a
        # result recorded meanwhile stands.
        await self._pending(claimed)
        interrupted = [f for f in interrupted if await self._give_up(f[0])]
        # Entries of actions answered from the ledger are written again too: the batch that
        # finished them may have stopped before their timeline entry was.
        entries = {k: str(d["timeline_id"]) for k, d in known.items() if d.get("timeline_id")}
        await self._record(answered, entries, newly=False)
        await self._record(interrupted, entries)

    async def _claim(self, actions: list[actions_pb2.Action], now: float) -> set[str]:
        """One insert marks the batch's new actions as claimed; returns the keys of those the
        ledger has already (claimed meanwhile by another consumer, or seen before)."""
        docs = [
            {
                "_id": _key(a),
                "tenant_id": a.tenant_id,
                "group_id": a.group_id,
                "status": "claimed",
                "claimed_at": int(now * 1e6),
                "timeline_id": action_entry_id(a),
            }
            for a in actions
        ]
        return {str(k) for k in await insert_new(self.ledger, docs)}

    async def _pending(self, actions: list[actions_pb2.Action]) -> None:
        """The timeline entries of newly claimed actions, `pending` until their result."""
        if not actions:
            return
        delete_after = kept_for(self.timeline_kept)
        await self.timeline.bulk_write(
            [
                UpdateOne(
                    {"_id": action_entry_id(a)},
                    {"$setOnInsert": {**action_entry(a, delete_after), "status": "pending"}},
                    upsert=True,
                )
                for a in actions
            ],
            ordered=False,
        )

    async def _give_up(self, action: actions_pb2.Action) -> bool:
        """Report an action found in flight as failed; False if another consumer finished it
        meanwhile (its result stands). Rare: only after a crash."""
        reported = await self.ledger.update_one(
            {"_id": _key(action), "status": "delivering"},
            {"$set": {"status": "failed", "reason": IN_FLIGHT_AT_RESTART, "attempts": 1}},
        )
        return reported.modified_count > 0

    async def _start(self, w: Waiting) -> bool:
        """Switch the action to `delivering`, as this delivery's; False if another consumer has
        it."""
        return await self._starts(w)

    async def _start_all(self, ws: list[Waiting]) -> list[bool]:
        """`_start` for every group starting now, in one request. A switch whose answer was
        lost, or that another consumer made, is told apart by its token."""
        now = stamp(datetime.now(UTC))
        started = await self.ledger.bulk_write(
            [
                UpdateOne(
                    {"_id": w.key, "status": "claimed"},
                    {"$set": {"status": "delivering", "started_at": now, "by": w.token}},
                )
                for w in ws
            ],
            ordered=False,
        )
        if started.modified_count == len(ws):
            return [True] * len(ws)
        docs = await self._ledger_entries(ws, {"status": 1, "by": 1})
        return [
            (d := docs.get(w.key)) is not None
            and d["status"] == "delivering"
            and d.get("by") == w.token
            for w in ws
        ]

    async def _ledger_entries(self, ws: list[Waiting], fields: dict[str, int]) -> dict[str, Any]:
        keys = [w.key for w in ws]
        return {d["_id"]: d async for d in self.ledger.find({"_id": {"$in": keys}}, fields)}

    async def _step(self, w: Waiting) -> float | None:
        """Deliver a group's first action, or say how long it must wait."""
        with log_context(tenant_id=w.action.tenant_id, action_id=w.action.action_id):
            wait = await self._try(w)
            if wait is not None:
                return wait
            if w.outcome is None:  # another consumer has it
                self.holds.release(w.tp, w.offset)
            else:
                self.recording.start(w.tp, self._recorded(w, w.outcome))
            return None

    async def _recorded(self, w: Waiting, outcome: Outcome) -> None:
        """Write the result until it is written, then release the action's offset."""
        wait, longest = _RECORD_RETRY_SECONDS
        while True:
            try:
                await self._finish(w, outcome)
                break
            except Exception:
                log.exception("recording a result failed; trying again in %.0f s", wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, longest)
        self.holds.release(w.tp, w.offset)

    async def _try(self, w: Waiting) -> float | None:
        """One platform call if it may go now; sets `w.outcome` when the action is finished
        (None left there: another consumer has it). Returns the seconds to wait otherwise."""
        waited = time.time() - w.claimed_at
        adapter = self.adapters.get(w.action.platform)
        if adapter is None:
            await self._final(w, failed(f"no adapter for platform {w.action.platform}"))
            return None
        if waited > self.longest_wait:
            await self._final(w, failed(f"not sent within {self.longest_wait:.0f} s"))
            return None
        if wait := await adapter.wait(w.action):
            return min(wait, self.longest_wait)
        if not await self._start(w):
            return None  # another consumer started it
        try:
            outcome = await adapter.deliver(w.action)
        except Exception as exc:
            log.exception("adapter error")
            outcome = failed(f"adapter error: {type(exc).__name__}", transient=True)
        w.attempts += 1
        retry = outcome.retry_after or self.backoff * 2 ** (w.attempts - 1)
        again = outcome.status == "failed" and outcome.transient and w.attempts < self.attempts
        if again and retry > self.longest_retry_after:
            outcome = failed(
                f"{outcome.reason}; asked to wait {retry:.0f} s, more than the"
                f" {self.longest_retry_after:.0f} s allowed"
            )
        elif again:
            # Nothing reached the platform (or it asked to be asked again): claimed once more.
            await self.ledger.update_one(
                {"_id": w.key, "status": "delivering", "by": w.token},
                {"$set": {"status": "claimed", "attempts": w.attempts}},
            )
            return retry
        if outcome.status != "delivered":
            log.warning("action %s: %s", outcome.status, outcome.reason)
        w.outcome = outcome
        return None

    async def _final(self, w: Waiting, outcome: Outcome) -> None:
        """Finish an action that was never started on the platform (if it is still ours)."""
        if await self._start(w):
            w.outcome = outcome

    async def _finish(self, w: Waiting, outcome: Outcome) -> None:
        # Only the consumer that started the action finishes it; if another one has meanwhile
        # reported it in flight (this one lost the partition), that report stands. Written to
        # the ledger once; the timeline and the topic are tried until they are written too.
        if not w.ledger_done:
            if not await self._finishes((w, outcome)):
                return
            w.ledger_done = True
        await self._results((w.action, outcome, w.attempts))

    async def _finish_all(self, finishing: list[tuple[Waiting, Outcome]]) -> list[bool]:
        """The results of every group finishing now into the ledger, in one request; True for
        each that was this delivery's to finish (a finish whose answer was lost is known by
        the token it wrote)."""
        now = stamp(datetime.now(UTC))
        done = await self.ledger.bulk_write(
            [
                UpdateOne(
                    {"_id": w.key, "status": "delivering", "by": w.token},
                    {
                        "$set": {
                            "status": o.status,
                            "reason": o.reason,
                            "attempts": w.attempts,
                            "finished_at": now,
                            "finished_by": w.token,
                        }
                    },
                )
                for w, o in finishing
            ],
            ordered=False,
        )
        if done.modified_count == len(finishing):
            return [True] * len(finishing)
        docs = await self._ledger_entries([w for w, _ in finishing], {"finished_by": 1})
        return [docs.get(w.key, {}).get("finished_by") == w.token for w, _ in finishing]

    async def _record_all(self, finished: list[Finished]) -> list[None]:
        await self._record(finished, {})
        return [None] * len(finished)

    async def _record(
        self, finished: list[Finished], entries: dict[str, str], newly: bool = True
    ) -> None:
        """Results into the timeline and onto the results topic (counted if `newly` finished)."""
        if not finished:
            return
        await self.timeline.bulk_write(
            [
                UpdateOne(
                    {"_id": entries.get(_key(a)) or action_entry_id(a)},
                    {
                        "$set": {"status": o.status, "reason": o.reason, "attempts": n},
                        "$setOnInsert": action_entry(a, kept_for(self.timeline_kept)),
                    },
                    upsert=True,
                )
                for a, o, n in finished
            ],
            ordered=False,
        )
        await self.producer.send_many(
            outgoing(self.results_topic, group_key(a.tenant_id, a.group_id), o.result_of(a, n))
            for a, o, n in finished
        )
        for action, outcome, _ in finished if newly else ():
            metrics.ACTIONS_FINISHED.labels(
                common_pb2.Platform.Name(action.platform), action.WhichOneof("kind"), outcome.status
            ).inc()

    async def drain(self, partitions: Sequence[TopicPartition]) -> None:
        """The partitions are going: their platform calls under way end, then their results
        are written."""
        await self.dispatcher.drain(partitions)
        await self.recording.drain(partitions)

    async def close(self) -> None:
        await self.dispatcher.close()
        await self.recording.close()
