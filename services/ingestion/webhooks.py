"""HTTP: the platforms' webhooks. They authenticate by the platform's own signature, with the
tenant's credentials, instead of an API key; what they carry goes through the same intake as
`POST /v1/events` (dedupe, rate limit, publish)."""

from __future__ import annotations

import hmac
import json
import logging
import math
from datetime import UTC, datetime

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.gen.shequn.v1 import events_pb2
from services.ingestion.credentials import CredentialStore
from services.ingestion.intake import Intake
from services.ingestion.ratelimit import TokenBuckets
from services.ingestion.telegram_updates import events_of as telegram_events
from services.runtime import metrics
from services.runtime.logs import log_context

log = logging.getLogger(__name__)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def router(intake: Intake, limiter: TokenBuckets, credentials: CredentialStore) -> APIRouter:
    api = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

    async def publish(
        tenant: str, platform: str, kind: str, events: list[events_pb2.Event]
    ) -> JSONResponse:
        metrics.WEBHOOK_UPDATES.labels(platform, kind, "recorded" if events else "ignored").inc()
        if not events:
            return JSONResponse({"accepted": 0, "duplicates": 0, "ignored": kind})
        wait = limiter.take(tenant, len(events))
        if wait:
            return JSONResponse(
                {"error": "rate limit"},
                status_code=429,
                headers={"Retry-After": str(math.ceil(wait))},
            )
        results = await intake.accept(events)
        accepted = sum(r.status == "accepted" for r in results)
        return JSONResponse({"accepted": accepted, "duplicates": len(results) - accepted})

    @api.post("/telegram/{tenant}")
    async def telegram(
        tenant: str,
        request: Request,
        secret: str | None = Header(None, alias="X-Telegram-Bot-Api-Secret-Token"),
    ) -> JSONResponse:
        """Telegram Bot API updates (setWebhook with this URL and the tenant's secret_token)."""
        configured = await credentials.telegram(tenant)
        if configured is None:
            return _error(404, "no Telegram bot is configured for this tenant")
        if secret is None or not hmac.compare_digest(
            secret.encode(), configured.secret_token.encode()
        ):
            metrics.WEBHOOK_UPDATES.labels("telegram", "any", "refused").inc()
            return _error(401, "X-Telegram-Bot-Api-Secret-Token does not match")
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError):
            return _error(400, "body: not valid JSON")
        if not isinstance(data, dict):
            return _error(400, "body: not a Telegram Update object")
        with log_context(tenant_id=tenant):
            try:
                kind, events = telegram_events(
                    data, tenant_id=tenant, received_at=datetime.now(UTC)
                )
            except ValueError as exc:
                # Answering an error would only make Telegram send it again and again.
                log.warning("unreadable Telegram update %s: %s", data.get("update_id"), exc)
                metrics.WEBHOOK_UPDATES.labels("telegram", "malformed", "ignored").inc()
                return JSONResponse({"accepted": 0, "duplicates": 0, "ignored": "malformed"})
            return await publish(tenant, "telegram", kind, events)

    return api
