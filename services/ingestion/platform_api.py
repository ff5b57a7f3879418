"""HTTP: platform credentials (`/v1/platforms/{platform}`) and operator actions (`/v1/actions`)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body
from pydantic import ValidationError

from services.ingestion.actions import ACTION_ROLES, ActionIn, to_action
from services.ingestion.credentials import MODELS, CredentialStore, Platform, redacted
from services.runtime.bus import Producer, Unconsumable, group_key, outgoing
from services.runtime.http import Admin, Operator, Owner
from services.runtime.outbound import refused_host
from services.runtime.refusals import Forbidden, Invalid, NotFound
from services.runtime.settings import Settings


def router(credentials: CredentialStore, producer: Producer, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.put("/platforms/{platform}", tags=["platforms"])
    async def put_platform(
        platform: Platform, principal: Owner, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Set the tenant's credentials for a platform (owner)."""
        try:
            parsed = MODELS[platform].model_validate(body)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            raise Invalid(".".join(str(p) for p in error["loc"]) or "body", error["msg"]) from None
        base = getattr(parsed, "api_base_url", None)
        refused = base and await refused_host(
            urlsplit(base).hostname or "", settings.outbound_allow_private_hosts
        )
        if refused:
            raise Invalid("api_base_url", refused)
        await credentials.put(principal.tenant_id, platform, parsed)
        return {"platform": platform, **redacted(parsed)}

    @api.get("/platforms/{platform}", tags=["platforms"])
    async def get_platform(platform: Platform, principal: Admin) -> dict[str, Any]:
        """The tenant's credentials for a platform, secrets reduced to their last 4 characters."""
        found = await credentials.get(principal.tenant_id, platform)
        if found is None:
            raise NotFound(f"{platform} is not configured")
        return {"platform": platform, **redacted(found)}

    @api.post("/actions", status_code=202, tags=["actions"])
    async def post_action(item: ActionIn, principal: Operator) -> dict[str, str]:
        """Ask for an action in a group (sending: operator; kicking, deleting, renaming,
        dismissing: admin); its delivery shows in the group's timeline."""
        needed = ACTION_ROLES[item.type]
        if principal.role < needed:
            raise Forbidden(f"{item.type} needs the {needed.name.lower()} role or above")
        action = to_action(item, tenant_id=principal.tenant_id)
        key = group_key(action.tenant_id, action.group_id)
        try:
            message = outgoing(settings.topic_actions, key, action)
        except Unconsumable as exc:
            raise Invalid("body", str(exc)) from None
        await producer.send_many([message])
        return {"action_id": action.action_id, "status": "pending"}

    return api
