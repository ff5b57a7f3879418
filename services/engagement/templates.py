"""WeCom's welcome is its own: WeCom posts a group welcome template to each newcomer of the
groups whose owners chose it (`externalcontact/group_welcome_template`, `%NICKNAME%` for the
name), and its server API cannot post into a customer group as it happens. So on WeCom
engagement posts no welcome; it keeps the templates in step with the welcome settings.

A group whose welcome reads as the tenant's shares the tenant's template; one whose text is
its own has its own (`welcome.wecom_template`), and keeps it once its owner could choose it.
Each template is one document: the text wanted, WeCom's template id once given, and the sync
in flight. A join, a new or renamed WeCom group, and every change of the settings compare the
text wanted with the document's; where it differs and no sync is in flight, the new text is
written over the version read (of two replicas, one wins and sends) and a
`sync_welcome_template` goes out — an add while there is no template id, else an edit. Its
result gives the id, or says why not: a failed sync is tried again by the next occasion."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from services.engagement.directory import Directory
from services.engagement.settings import TenantSettings
from services.engagement.welcome import wecom_template
from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.envelope import natural_id, new_action
from services.runtime.instants import stamp
from services.runtime.projections import group_doc_id
from services.runtime.settings import Settings
from services.runtime.store import DUPLICATE_KEY, Document, Indexes, Store, over_version

TEMPLATES = "welcome_templates"
INDEXES = [
    Indexes(
        TEMPLATES, [IndexModel([("tenant_id", ASCENDING)]), IndexModel([("action_id", ASCENDING)])]
    )
]
SYNC = "sync_welcome_template"
_IN_FLIGHT = timedelta(minutes=10)  # a sync with no result by then is taken for lost
# What makes a WeCom group's template worth a look: its newcomers, its name and notice.
_OCCASIONS = ("member_joined", "group_created", "group_updated")
Occasion = tuple[str, str, str]  # tenant, group, the event that made it one ("" for settings)


def occasions(events: Iterable[events_pb2.Event]) -> list[Occasion]:
    return [
        (e.tenant_id, e.group_id, e.event_id)
        for e in events
        if e.platform == common_pb2.PLATFORM_WECOM and e.WhichOneof("payload") in _OCCASIONS
    ]


def template_id_of(tenant_id: str, group_id: str, shared: bool) -> str:
    # The tenant's sorts first in a page ("_" before "g").
    return f"{tenant_id}:_tenant" if shared else f"{tenant_id}:group:{group_id}"


class Templates:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, configured: TenantSettings
    ) -> None:
        self.templates, self.directory = store[TEMPLATES], Directory(store)
        self.producer, self.topic, self.configured = producer, settings.topic_actions, configured

    async def keep_in_step(self, seen: Sequence[Occasion]) -> None:
        """Send the syncs the groups' templates need (the directory has recorded the events)."""
        if not seen:
            return
        groups = {(t, g) for t, g, _ in seen}
        found = await self.configured.for_groups(groups)
        tenants = {t: (await self.configured.tenant(t)).welcome for t in {t for t, _ in groups}}
        directory = await self.directory.of(groups)
        texts: list[tuple[Occasion, str, bool]] = []
        for occasion in seen:
            tenant_id, group_id, _ = occasion
            rules = found[(tenant_id, group_id)][0].welcome
            info = directory.get(group_doc_id(tenant_id, group_id), {})
            name, notice = info.get("name", ""), info.get("notice", "")
            # A welcome that names the group waits for its name (the group's next event).
            if rules.enabled and (name or "{group_name}" not in rules.template):
                texts.append((occasion, *wecom_template(tenants[tenant_id], rules, name, notice)))
        ids = {template_id_of(t, g, shared) for (t, g, _), _, shared in texts}
        ids |= {template_id_of(t, g, False) for (t, g, _), _, _ in texts}
        read = {d["_id"]: d async for d in self.templates.find({"_id": {"$in": sorted(ids)}})}
        wanted: dict[str, tuple[Occasion, str]] = {}
        for occasion, text, shared in texts:
            own = template_id_of(occasion[0], occasion[1], False)
            # A group that had a template of its own keeps it: its owner chose that one.
            wanted[own if own in read else template_id_of(*occasion[:2], shared)] = (occasion, text)
        now = datetime.now(UTC)
        syncs = [
            (doc_id, occasion, text, read.get(doc_id))
            for doc_id, (occasion, text) in wanted.items()
            if _needs_sync(read.get(doc_id), text, now)
        ]
        won = await self._claim(syncs, now)
        await self.producer.send_many(
            outgoing(self.topic, group_key(o[0], o[1]), _sync(won[doc_id], o, text, before))
            for doc_id, o, text, before in syncs
            if doc_id in won
        )

    async def _claim(
        self, syncs: list[tuple[str, Occasion, str, Document | None]], now: datetime
    ) -> dict[str, str]:
        """Write each sync over the version read; of those this process won, the action ids."""
        ops, action_ids = [], []
        for doc_id, (tenant_id, group_id, _), text, before in syncs:
            version = secrets.token_hex(8)
            action_ids.append(natural_id("engagement:welcome-template", doc_id, version))
            fields = {
                "tenant_id": tenant_id,
                "scope": "tenant" if doc_id.endswith(":_tenant") else "group",
                "group_id": group_id,
                "text": text,
                "state": "syncing",
                "action_id": action_ids[-1],
                "version": version,
                "sent_at": stamp(now),
                "reason": "",
            }
            ops.append(UpdateOne(over_version(doc_id, before), {"$set": fields}, upsert=True))
        if not ops:
            return {}
        lost: set[int] = set()
        try:
            await self.templates.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:  # the upsert of a version another replica replaced
            errors = exc.details.get("writeErrors", [])
            if any(e["code"] != DUPLICATE_KEY for e in errors):
                raise
            lost = {e["index"] for e in errors}
        return {s[0]: action_ids[i] for i, s in enumerate(syncs) if i not in lost}

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """The syncs' outcomes: the template's id, or why not (tried again the next time)."""
        ops = []
        for r in results:
            if r.action_type != SYNC:
                continue
            if r.status == actions_pb2.DELIVERY_STATUS_DELIVERED and r.message_id:
                done = {"state": "synced", "template_id": r.message_id, "reason": ""}
                ops.append(UpdateOne({"action_id": r.action_id}, {"$set": done}))
            else:
                # An edit WeCom refused (the template deleted there, say) is added anew next.
                failed = {"state": "failed", "reason": r.reason}
                ops.append(
                    UpdateOne({"action_id": r.action_id}, {"$set": failed, "$unset": _NO_ID})
                )
        if ops:
            await self.templates.bulk_write(ops, ordered=False)

    async def resync(self, tenant_id: str, group_id: str | None = None) -> None:
        """After the tenant's settings changed (or a group's): every template it has."""
        docs = self.templates.find({"tenant_id": tenant_id}, {"group_id": 1})
        seen = [(tenant_id, d["group_id"], "") async for d in docs]
        if group_id is not None and await self.directory.is_wecom(tenant_id, group_id):
            seen.append((tenant_id, group_id, ""))
        await self.keep_in_step(seen)

    async def of_tenant(
        self, tenant_id: str, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the tenant's templates, the tenant's first, and the next page's cursor."""
        where: Document = {"tenant_id": tenant_id}
        if after:
            where = {"$and": [where, {"_id": {"$gt": f"{tenant_id}:{after}"}}]}
        docs = self.templates.find(where).sort("_id", ASCENDING).limit(limit + 1)
        shown = ("scope", "group_id", "text", "state", "template_id", "reason")
        found = [(d["_id"], {k: d.get(k) for k in shown}) async for d in docs]
        more = found[limit - 1][0].split(":", 1)[1] if len(found) > limit else None
        return [t for _, t in found[:limit]], more


_NO_ID = {"template_id": ""}


def _needs_sync(doc: Document | None, text: str, now: datetime) -> bool:
    if doc is None or doc["state"] == "failed":
        return True
    if doc["state"] == "syncing":
        return now - datetime.fromtimestamp(doc["sent_at"] / 1e6, UTC) > _IN_FLIGHT
    return bool(doc["text"] != text)


def _sync(
    action_id: str, occasion: Occasion, text: str, before: Document | None
) -> actions_pb2.Action:
    tenant_id, group_id, cause = occasion
    action = new_action(
        action_id, tenant_id, group_id, common_pb2.PLATFORM_WECOM, "engagement", cause
    )
    action.sync_welcome_template.text = text
    action.sync_welcome_template.template_id = (before or {}).get("template_id") or ""
    return action
