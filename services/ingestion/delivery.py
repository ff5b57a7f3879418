"""Outbound delivery: the consumer of shequn.actions.v1.

Each action has a ledger document keyed by its id that moves `claimed` → `delivering` →
`delivered | failed | unsupported`:
- a batch reads the ledger once; finished actions are answered again from it (a redelivery
  changes nothing), new ones are claimed with one insert;
- just before the platform is called, the action is switched from `claimed` to `delivering`
  by a conditional update, so that of two consumers only one ever calls the platform; right
  after, its result is written;
- groups are delivered in parallel, each group's actions in order; transient failures are
  retried with backoff, or after the wait the platform asked for;
- results go to the timeline and to shequn.action-results.v1 before the batch is committed.

An action found `delivering` was in flight when a gateway stopped. Whether the platform carried
it out cannot be known, so it is reported `failed` and not tried again: nothing is ever
delivered twice. A `claimed` action was never attempted and is simply delivered. The two
single-document writes per action cost little next to the platform call they surround."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from pymongo import UpdateOne

from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.ingestion.adapters import Adapter, Outcome, failed
from services.ingestion.timeline import TIMELINE, action_entry, action_entry_id
from services.runtime import metrics
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.consumer import ConsumerSpec, Record
from services.runtime.envelope import decode_checked
from services.runtime.logs import log_context
from services.runtime.settings import Settings
from services.runtime.store import Store, insert_new, stamp

log = logging.getLogger(__name__)
DELIVERIES = "deliveries"
_STATUS = {
    "delivered": actions_pb2.DELIVERY_STATUS_DELIVERED,
    "failed": actions_pb2.DELIVERY_STATUS_FAILED,
    "unsupported": actions_pb2.DELIVERY_STATUS_UNSUPPORTED,
}
_PARALLEL_GROUPS = 32
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
        producer: Producer,
        settings: Settings,
        adapters: Mapping[int, Adapter],
    ) -> None:
        self.ledger = store[DELIVERIES]
        self.timeline = store[TIMELINE]
        self.producer = producer
        self.adapters = adapters
        self.results_topic = settings.topic_action_results
        self.attempts = settings.delivery_attempts
        self.backoff = settings.delivery_backoff_ms / 1000

    def consumer(self, settings: Settings) -> ConsumerSpec[actions_pb2.Action]:
        return ConsumerSpec(
            "ingestion-delivery",
            [settings.topic_actions],
            decode_action,
            self.handle,
            lambda a: {"tenant_id": a.tenant_id, "action_id": a.action_id},
        )

    async def handle(self, records: Sequence[Record[actions_pb2.Action]]) -> None:
        actions = list({_key(r.value): r.value for r in records}.values())
        known = {
            d["_id"]: d
            async for d in self.ledger.find({"_id": {"$in": [_key(a) for a in actions]}})
        }
        answered: list[Finished] = []  # finished before: the same result again
        finished: list[Finished] = []  # finished now
        to_deliver = []
        for action in actions:
            doc = known.get(_key(action))
            status = doc["status"] if doc else None
            if status is None or status == "claimed":
                to_deliver.append(action)
            elif status == "delivering":
                finished.append((action, failed(IN_FLIGHT_AT_RESTART), 1))
            else:
                outcome = Outcome(status, doc.get("reason", "") if doc else "")
                answered.append((action, outcome, doc.get("attempts", 0) if doc else 0))
        await self._claim([a for a in to_deliver if _key(a) not in known])
        finished += await self._deliver_all(to_deliver)
        # Entries of actions answered from the ledger are written again too: the batch that
        # finished them may have stopped before their timeline entry was.
        entries = {k: str(d["timeline_id"]) for k, d in known.items() if d.get("timeline_id")}
        await self._record(finished, answered, entries)
        await self.producer.send_many(
            outgoing(self.results_topic, group_key(a.tenant_id, a.group_id), _result(a, o, n))
            for a, o, n in answered + finished
        )

    async def _claim(self, actions: list[actions_pb2.Action]) -> None:
        """One insert marks the batch's new actions as claimed, with a pending timeline entry."""
        if not actions:
            return
        now = stamp(datetime.now(UTC))
        docs = [
            {
                "_id": _key(a),
                "tenant_id": a.tenant_id,
                "group_id": a.group_id,
                "status": "claimed",
                "claimed_at": now,
                "timeline_id": action_entry_id(a),
            }
            for a in actions
        ]
        # Claimed meanwhile by another consumer: the conditional start decides who delivers.
        await insert_new(self.ledger, docs)
        await self.timeline.bulk_write(
            [
                UpdateOne(
                    {"_id": action_entry_id(a)},
                    {"$setOnInsert": {**action_entry(a), "status": "pending"}},
                    upsert=True,
                )
                for a in actions
            ],
            ordered=False,
        )

    async def _deliver_all(self, actions: list[actions_pb2.Action]) -> list[Finished]:
        by_group: dict[str, list[actions_pb2.Action]] = defaultdict(list)
        for action in actions:
            by_group[f"{action.tenant_id}:{action.group_id}"].append(action)
        finished: list[Finished] = []
        limit = asyncio.Semaphore(_PARALLEL_GROUPS)

        async def group(queue: list[actions_pb2.Action]) -> None:
            async with limit:
                for action in queue:
                    done = await self._deliver(action)
                    if done is not None:
                        finished.append(done)

        # A failure in one group cancels the others, so no delivery goes on unrecorded while
        # the batch is retried.
        async with asyncio.TaskGroup() as groups:
            for queue in by_group.values():
                groups.create_task(group(queue))
        return finished

    async def _deliver(self, action: actions_pb2.Action) -> Finished | None:
        """Deliver one action, or None when another consumer has started it."""
        started = await self.ledger.update_one(
            {"_id": _key(action), "status": "claimed"},
            {"$set": {"status": "delivering", "started_at": stamp(datetime.now(UTC))}},
        )
        if started.modified_count == 0:
            return None
        with log_context(tenant_id=action.tenant_id, action_id=action.action_id):
            outcome, attempts = await self._attempt(action)
        # Only the consumer that started the action finishes it; if another one has meanwhile
        # reported it in flight (this one lost the partition), that report stands.
        finished = await self.ledger.update_one(
            {"_id": _key(action), "status": "delivering"},
            {
                "$set": {
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "attempts": attempts,
                    "finished_at": stamp(datetime.now(UTC)),
                }
            },
        )
        if finished.modified_count == 0:
            return None
        return action, outcome, attempts

    async def _attempt(self, action: actions_pb2.Action) -> tuple[Outcome, int]:
        adapter = self.adapters.get(action.platform)
        if adapter is None:
            return failed(f"no adapter for platform {action.platform}"), 0
        for attempt in range(1, self.attempts + 1):
            try:
                outcome = await adapter.deliver(action)
            except Exception as exc:
                log.exception("adapter error")
                outcome = failed(f"adapter error: {type(exc).__name__}", transient=True)
            if outcome.status != "failed" or not outcome.transient or attempt == self.attempts:
                if outcome.status != "delivered":
                    log.warning("action %s: %s", outcome.status, outcome.reason)
                return outcome, attempt
            await asyncio.sleep(outcome.retry_after or self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _record(
        self, finished: list[Finished], answered: list[Finished], entries: dict[str, str]
    ) -> None:
        """Results into the timeline (and the ledger, for actions found in flight)."""
        if not finished and not answered:
            return
        interrupted = [a for a, o, _ in finished if o.reason == IN_FLIGHT_AT_RESTART]
        if interrupted:
            await self.ledger.update_many(
                {"_id": {"$in": [_key(a) for a in interrupted]}, "status": "delivering"},
                {"$set": {"status": "failed", "reason": IN_FLIGHT_AT_RESTART, "attempts": 1}},
            )
        await self.timeline.bulk_write(
            [
                UpdateOne(
                    {"_id": entries.get(_key(a)) or action_entry_id(a)},
                    {
                        "$set": {"status": o.status, "reason": o.reason, "attempts": n},
                        "$setOnInsert": action_entry(a),
                    },
                    upsert=True,
                )
                for a, o, n in finished + answered
            ],
            ordered=False,
        )
        for action, outcome, _ in finished:
            metrics.ACTIONS_FINISHED.labels(
                common_pb2.Platform.Name(action.platform), action.WhichOneof("kind"), outcome.status
            ).inc()


def _result(
    action: actions_pb2.Action, outcome: Outcome, attempts: int
) -> actions_pb2.ActionResult:
    result = actions_pb2.ActionResult(
        action_id=action.action_id,
        tenant_id=action.tenant_id,
        group_id=action.group_id,
        platform=action.platform,
        action_type=action.WhichOneof("kind") or "",
        source_service=action.source_service,
        status=_STATUS[outcome.status],
        reason=outcome.reason,
        attempts=attempts,
    )
    result.finished_at.GetCurrentTime()
    return result
