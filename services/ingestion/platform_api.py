"""HTTP: platform credentials (`/v1/platforms/{platform}`) and operator actions (`/v1/actions`)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, HTTPException
from pydantic import ValidationError

from services.ingestion.actions import ActionIn, to_action
from services.ingestion.credentials import MODELS, CredentialStore, Platform, redacted
from services.runtime.bus import Outgoing, Producer, group_key
from services.runtime.http import Admin, Operator
from services.runtime.outbound import refused_host
from services.runtime.settings import Settings


def router(credentials: CredentialStore, producer: Producer, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.put("/platforms/{platform}", tags=["platforms"])
    async def put_platform(
        platform: Platform, principal: Admin, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Set the tenant's credentials for a platform (owner or admin)."""
        try:
            parsed = MODELS[platform].model_validate(body)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in error["loc"]) or "body"
            raise HTTPException(
                422, {"error": f"{field}: {error['msg']}", "field": field}
            ) from None
        base = getattr(parsed, "api_base_url", None)
        refused = base and await refused_host(
            urlsplit(base).hostname or "", settings.outbound_allow_private_hosts
        )
        if refused:
            raise HTTPException(422, {"error": f"api_base_url: {refused}", "field": "api_base_url"})
        await credentials.put(principal.tenant_id, platform, parsed)
        return {"platform": platform, **redacted(parsed)}

    @api.get("/platforms/{platform}", tags=["platforms"])
    async def get_platform(platform: Platform, principal: Admin) -> dict[str, Any]:
        """The tenant's credentials for a platform, secrets reduced to their last 4 characters."""
        found = await credentials.get(principal.tenant_id, platform)
        if found is None:
            raise HTTPException(404, {"error": f"{platform} is not configured"})
        return {"platform": platform, **redacted(found)}

    @api.post("/actions", status_code=202, tags=["actions"])
    async def post_action(item: ActionIn, principal: Operator) -> dict[str, str]:
        """Ask for an action in a group; its delivery shows in the group's timeline."""
        action = to_action(item, tenant_id=principal.tenant_id)
        await producer.send_many(
            [
                Outgoing(
                    settings.topic_actions,
                    group_key(action.tenant_id, action.group_id),
                    action.SerializeToString(),
                )
            ]
        )
        return {"action_id": action.action_id, "status": "pending"}

    return api
