"""Outbound delivery: the consumer of shequn.actions.v1.

For each batch: read the delivery ledger once; actions already finished are answered again
from it (a redelivery changes nothing); the rest are claimed with one insert (the `_id` is the
action id, so two consumers cannot both claim one), delivered through their platform's adapter
— groups in parallel, each group's actions in order, transient failures retried with backoff or
after the wait the platform asked for — and their results written to the ledger and the
timeline and published to shequn.action-results.v1 before the batch is committed.

An action found claimed but unfinished was in flight when a gateway stopped. Whether the
platform carried it out cannot be known, so it is reported `failed` and not tried again:
nothing is ever delivered twice."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.ingestion.adapters import Adapter, Outcome, failed
from services.ingestion.timeline import TIMELINE, action_entry, action_entry_id
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key
from services.runtime.consumer import ConsumerSpec, InvalidMessage, Record
from services.runtime.logs import log_context
from services.runtime.settings import Settings
from services.runtime.store import DUPLICATE_KEY, Store, stamp
from services.runtime.wellformed import problem

log = logging.getLogger(__name__)
DELIVERIES = "deliveries"
_STATUS = {
    "delivered": actions_pb2.DELIVERY_STATUS_DELIVERED,
    "failed": actions_pb2.DELIVERY_STATUS_FAILED,
    "unsupported": actions_pb2.DELIVERY_STATUS_UNSUPPORTED,
}
_PARALLEL_GROUPS = 32
IN_FLIGHT_AT_RESTART = "outcome unknown: the gateway stopped during delivery; not retried"


def decode_action(raw: bytes) -> actions_pb2.Action:
    try:
        action = actions_pb2.Action.FromString(raw)
    except DecodeError as exc:
        raise InvalidMessage(f"not a shequn.v1.Action: {exc}") from None
    if not (action.action_id and action.tenant_id and action.group_id):
        raise InvalidMessage("action_id, tenant_id and group_id are required")
    if action.WhichOneof("kind") is None:
        raise InvalidMessage("the action has no kind")
    if found := problem(action):
        raise InvalidMessage(found)
    return action


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
        results: dict[str, actions_pb2.ActionResult] = {}
        interrupted = []
        for action in actions:
            doc = known.get(_key(action))
            if doc is None:
                continue
            if doc["status"] == "delivering":
                interrupted.append(action)
            else:
                results[_key(action)] = _result(
                    action, doc["status"], doc.get("reason", ""), doc.get("attempts", 0)
                )
        claimed = await self._claim([a for a in actions if _key(a) not in known])
        outcomes = await self._deliver_all(claimed)
        finished = {
            _key(a): (a, outcome, attempts)
            for a, (outcome, attempts) in zip(claimed, outcomes, strict=True)
        }
        for action in interrupted:
            finished[_key(action)] = (action, failed(IN_FLIGHT_AT_RESTART), 1)
        await self._finish(list(finished.values()))
        for action, outcome, _ in finished.values():
            metrics.ACTIONS_FINISHED.labels(
                common_pb2.Platform.Name(action.platform), action.WhichOneof("kind"), outcome.status
            ).inc()
        for action, outcome, attempts in finished.values():
            results[_key(action)] = _result(action, outcome.status, outcome.reason, attempts)
        await self.producer.send_many(
            Outgoing(self.results_topic, group_key(r.tenant_id, r.group_id), r.SerializeToString())
            for r in results.values()
        )

    async def _claim(self, actions: list[actions_pb2.Action]) -> list[actions_pb2.Action]:
        """Mark actions as being delivered; returns those this consumer got."""
        if not actions:
            return []
        now = datetime.now(UTC)
        docs = [
            {
                "_id": _key(a),
                "tenant_id": a.tenant_id,
                "group_id": a.group_id,
                "status": "delivering",
                "claimed_at": stamp(now),
                "timeline_id": action_entry_id(a),
            }
            for a in actions
        ]
        taken: set[int] = set()
        try:
            await self.ledger.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e["code"] != DUPLICATE_KEY for e in errors):
                raise
            taken = {e["index"] for e in errors}
        mine = [a for i, a in enumerate(actions) if i not in taken]
        if mine:
            await self.timeline.bulk_write(
                [
                    UpdateOne(
                        {"_id": action_entry_id(a)},
                        {"$setOnInsert": {**action_entry(a), "status": "pending"}},
                        upsert=True,
                    )
                    for a in mine
                ],
                ordered=False,
            )
        return mine

    async def _deliver_all(self, actions: list[actions_pb2.Action]) -> list[tuple[Outcome, int]]:
        by_group: dict[str, list[int]] = defaultdict(list)
        for i, action in enumerate(actions):
            by_group[f"{action.tenant_id}:{action.group_id}"].append(i)
        outcomes: list[tuple[Outcome, int]] = [(failed("not delivered"), 0)] * len(actions)
        limit = asyncio.Semaphore(_PARALLEL_GROUPS)

        async def group(indexes: list[int]) -> None:
            async with limit:
                for i in indexes:
                    outcomes[i] = await self._deliver(actions[i])

        await asyncio.gather(*(group(ix) for ix in by_group.values()))
        return outcomes

    async def _deliver(self, action: actions_pb2.Action) -> tuple[Outcome, int]:
        adapter = self.adapters.get(action.platform)
        if adapter is None:
            return failed(f"no adapter for platform {action.platform}"), 0
        with log_context(tenant_id=action.tenant_id, action_id=action.action_id):
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

    async def _finish(self, finished: list[tuple[actions_pb2.Action, Outcome, int]]) -> None:
        if not finished:
            return
        now = datetime.now(UTC)
        await self.ledger.bulk_write(
            [
                UpdateOne(
                    {"_id": _key(a)},
                    {
                        "$set": {
                            "status": o.status,
                            "reason": o.reason,
                            "attempts": n,
                            "finished_at": stamp(now),
                        }
                    },
                )
                for a, o, n in finished
            ],
            ordered=False,
        )
        await self.timeline.bulk_write(
            [
                UpdateOne(
                    {"_id": action_entry_id(a)},
                    {
                        "$set": {"status": o.status, "reason": o.reason, "attempts": n},
                        "$setOnInsert": action_entry(a),
                    },
                    upsert=True,
                )
                for a, o, n in finished
            ],
            ordered=False,
        )


def _result(
    action: actions_pb2.Action, status: str, reason: str, attempts: int
) -> actions_pb2.ActionResult:
    result = actions_pb2.ActionResult(
        action_id=action.action_id,
        tenant_id=action.tenant_id,
        group_id=action.group_id,
        platform=action.platform,
        action_type=action.WhichOneof("kind") or "",
        source_service=action.source_service,
        status=_STATUS[status],
        reason=reason,
        attempts=attempts,
    )
    result.finished_at.GetCurrentTime()
    return result
