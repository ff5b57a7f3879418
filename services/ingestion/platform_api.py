"""HTTP: platform credentials (`/v1/platforms/{platform}`) and operator actions (`/v1/actions`)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends

from services.ingestion.actions import ACTION_ROLES, ActionIn, to_action
from services.ingestion.credentials import (
    CredentialStore,
    Platform,
    TelegramCredentials,
    WecomCredentials,
    redacted,
)
from services.runtime.auth import Principal
from services.runtime.bus import Producer, Unconsumable, group_key, outgoing
from services.runtime.http import Admin, Operator, Owner, provided
from services.runtime.outbound import refused_host
from services.runtime.refusals import Forbidden, Invalid, NotFound
from services.runtime.settings import Settings

Credentials = Annotated[CredentialStore, Depends(provided(CredentialStore))]
Producing = Annotated[Producer, Depends(provided(Producer))]
Configured = Annotated[Settings, Depends(provided(Settings))]
router = APIRouter(prefix="/v1")


async def _put(
    platform: Platform,
    parsed: WecomCredentials | TelegramCredentials,
    principal: Principal,
    credentials: CredentialStore,
    settings: Settings,
) -> dict[str, Any]:
    base = getattr(parsed, "api_base_url", None)
    refused = base and await refused_host(
        urlsplit(base).hostname or "", settings.outbound_allow_private_hosts
    )
    if refused:
        raise Invalid("api_base_url", refused)
    await credentials.put(principal.tenant_id, platform, parsed)
    return {"platform": platform, **redacted(parsed)}


@router.put("/platforms/wecom", tags=["platforms"])
async def put_wecom(
    body: WecomCredentials, principal: Owner, credentials: Credentials, settings: Configured
) -> dict[str, Any]:
    """Set the tenant's WeCom app (owner)."""
    return await _put("wecom", body, principal, credentials, settings)


@router.put("/platforms/telegram", tags=["platforms"])
async def put_telegram(
    body: TelegramCredentials, principal: Owner, credentials: Credentials, settings: Configured
) -> dict[str, Any]:
    """Set the tenant's Telegram bot (owner)."""
    return await _put("telegram", body, principal, credentials, settings)


@router.get("/platforms/{platform}", tags=["platforms"])
async def get_platform(
    platform: Platform, principal: Admin, credentials: Credentials
) -> dict[str, Any]:
    """The tenant's credentials for a platform, secrets reduced to their last 4 characters."""
    found = await credentials.get(principal.tenant_id, platform)
    if found is None:
        raise NotFound(f"{platform} is not configured")
    return {"platform": platform, **redacted(found)}


@router.post("/actions", status_code=202, tags=["actions"])
async def post_action(
    item: ActionIn, principal: Operator, producer: Producing, settings: Configured
) -> dict[str, str]:
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
