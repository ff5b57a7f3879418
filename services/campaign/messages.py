"""Campaign's messages to groups — a broadcast's, an SOP slot's — and their outcomes.

A document (a broadcast, a slot) lists the groups it reaches; its message to the i-th is the
action `{prefix}{document id}:{i}`, so the same document produces the same actions again, and
each action result finds its document and group in its id."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import UpdateOne

from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.runtime.bus import Outgoing, group_key, outgoing
from services.runtime.envelope import new_action

OUTCOMES = ("pending", "delivered", "failed", "unsupported", "awaiting_confirmation")


def messages(topic: str, prefix: str, doc: Mapping[str, Any]) -> list[Outgoing]:
    """A `send_text` to each of the document's groups: the group's own `text` (and `mentions`),
    or the document's."""
    tenant_id, out = doc["tenant_id"], []
    for i, group in enumerate(doc["groups"]):
        platform = common_pb2.Platform.Value(group["platform"])
        action_id = f"{prefix}{doc['_id']}:{i}"
        action = new_action(action_id, tenant_id, group["group_id"], platform, "campaign")
        action.send_text.text = group.get("text", doc.get("text", ""))
        action.send_text.mentions.extend(group.get("mentions", []))
        out.append(outgoing(topic, group_key(tenant_id, group["group_id"]), action))
    return out


def outcome_writes(results: Iterable[actions_pb2.ActionResult], prefix: str) -> list[UpdateOne]:
    """Each result of a message of `prefix`, as its outcome in its document (the last wins)."""
    writes = []
    for r in results:
        if r.action_id.startswith(prefix):
            doc_id, i = r.action_id.removeprefix(prefix).rsplit(":", 1)
            writes.append(UpdateOne({"_id": doc_id}, {"$set": {f"outcomes.{i}": outcome_of(r)}}))
    return writes


def outcome_of(result: actions_pb2.ActionResult) -> str:
    if result.status == actions_pb2.DELIVERY_STATUS_DELIVERED:
        # On WeCom a group message is a task that waits for the owner to confirm it.
        wecom = result.platform == common_pb2.PLATFORM_WECOM
        return "awaiting_confirmation" if wecom else "delivered"
    if result.status == actions_pb2.DELIVERY_STATUS_UNSUPPORTED:
        return "unsupported"
    return "failed"


def counts(groups: int, outcomes: Mapping[str, str]) -> dict[str, int]:
    found = Counter(outcomes.values())
    return {"pending": groups - len(outcomes), **{o: found[o] for o in OUTCOMES[1:]}}


def outcomes_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A document's live counts, and each group's outcome."""
    outcomes = doc.get("outcomes", {})
    groups = [
        {"group_id": g["group_id"], "outcome": outcomes.get(str(i), "pending")}
        for i, g in enumerate(doc["groups"])
    ]
    return {"counts": counts(len(doc["groups"]), outcomes), "groups": groups}
