"""HTTP: the platforms' webhooks. They authenticate by the platform's own signature, with the
tenant's credentials, instead of an API key; what they carry goes through the same intake as
`POST /v1/events` (dedupe, rate limit, publish)."""

from __future__ import annotations

import hmac
import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from services.gen.shequn.v1 import events_pb2
from services.ingestion.adapters.wecom import WecomApi
from services.ingestion.credentials import CredentialStore
from services.ingestion.events import MAX_BATCH
from services.ingestion.intake import Intake, ItemResult
from services.ingestion.telegram_updates import events_of as telegram_events
from services.ingestion.wecom_callbacks import Callback, archive_events, group_change_events
from services.runtime import metrics
from services.runtime.auth import TENANT_ID
from services.runtime.http import Operator, provided
from services.runtime.logs import log_context
from services.runtime.openapi import answers
from services.runtime.ratelimit import RateLimited, too_many

log = logging.getLogger(__name__)


def _counts(results: list[ItemResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {"accepted": counts["accepted"], "duplicates": counts["duplicate"]}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@dataclass(frozen=True)
class Signed:
    """The query WeCom signs each of its requests with."""

    msg_signature: str
    timestamp: str
    nonce: str


Signature = Annotated[Signed, Depends()]
Intakes = Annotated[Intake, Depends(provided(Intake))]
Credentials = Annotated[CredentialStore, Depends(provided(CredentialStore))]
Wecom = Annotated[WecomApi, Depends(provided(WecomApi))]
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


async def publish(
    intake: Intake, platform: str, kind: str, events: list[events_pb2.Event]
) -> list[ItemResult]:
    """What a platform delivered, through the intake, counted by outcome (raises
    RateLimited). Events it refuses are answered as refused, not as errors: the platform
    would only send them again."""
    if not events:
        metrics.WEBHOOK_UPDATES.labels(platform, kind, "ignored").inc()
        return []
    results = await intake.accept(events)
    counts = Counter(r.status for r in results)
    metrics.WEBHOOK_UPDATES.labels(platform, kind, "recorded").inc(
        counts["accepted"] + counts["duplicate"]
    )
    metrics.WEBHOOK_UPDATES.labels(platform, kind, "refused").inc(counts["rejected"])
    return results


@router.post("/telegram/{tenant}", responses=answers(429))
async def telegram(
    tenant: str,
    request: Request,
    intake: Intakes,
    credentials: Credentials,
    secret: str | None = Header(None, alias="X-Telegram-Bot-Api-Secret-Token"),
) -> JSONResponse:
    """Telegram Bot API updates (setWebhook with this URL and the tenant's secret_token)."""
    configured = await credentials.telegram(tenant) if TENANT_ID.fullmatch(tenant) else None
    if configured is None:
        return _error(404, "no Telegram bot is configured for this tenant")
    if secret is None or not hmac.compare_digest(secret.encode(), configured.secret_token.encode()):
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
            kind, events = telegram_events(data, tenant_id=tenant, received_at=datetime.now(UTC))
        except ValueError as exc:
            # Answering an error would only make Telegram send it again and again.
            log.warning("unreadable Telegram update %s: %s", data.get("update_id"), exc)
            metrics.WEBHOOK_UPDATES.labels("telegram", "malformed", "ignored").inc()
            return JSONResponse({"accepted": 0, "duplicates": 0, "ignored": "malformed"})
        try:
            results = await publish(intake, "telegram", kind, events)
        except RateLimited as exc:
            return too_many(exc)
        if not events:
            return JSONResponse({"accepted": 0, "duplicates": 0, "ignored": kind})
        refused = [r.error for r in results if r.status == "rejected"]
        return JSONResponse({**_counts(results), **({"rejected": refused} if refused else {})})


async def wecom_crypto(credentials: CredentialStore, tenant: str) -> WeChatCrypto | None:
    # A name no tenant can have costs no lookup (and no cache entry).
    configured = await credentials.wecom(tenant) if TENANT_ID.fullmatch(tenant) else None
    if configured is None:
        return None
    return WeChatCrypto(configured.token, configured.encoding_aes_key, configured.corp_id)


@router.get("/wecom/{tenant}", response_class=PlainTextResponse)
async def wecom_verify(
    tenant: str, signed: Signature, echostr: str, credentials: Credentials
) -> PlainTextResponse:
    """WeCom's URL verification: answer the decrypted echostr."""
    crypto = await wecom_crypto(credentials, tenant)
    if crypto is None:
        return PlainTextResponse("no WeCom app is configured for this tenant", status_code=404)
    try:
        return PlainTextResponse(
            crypto.check_signature(signed.msg_signature, signed.timestamp, signed.nonce, echostr)
        )
    except InvalidSignatureException:
        return PlainTextResponse("msg_signature does not match", status_code=401)
    except Exception:  # a malformed echostr or key: wechatpy raises plain errors
        return PlainTextResponse("echostr cannot be decrypted", status_code=400)


@router.post("/wecom/{tenant}", response_class=PlainTextResponse, responses=answers(429))
async def wecom_callback(
    tenant: str,
    signed: Signature,
    request: Request,
    intake: Intakes,
    credentials: Credentials,
    wecom_api: Wecom,
) -> Response:
    """WeCom callbacks (客户群变更 and others), encrypted with the tenant's EncodingAESKey."""
    crypto = await wecom_crypto(credentials, tenant)
    if crypto is None:
        return PlainTextResponse("no WeCom app is configured for this tenant", status_code=404)
    try:
        plain = crypto.decrypt_message(
            await request.body(), signed.msg_signature, signed.timestamp, signed.nonce
        )
    except InvalidSignatureException:
        metrics.WEBHOOK_UPDATES.labels("wecom", "any", "refused").inc()
        return PlainTextResponse("msg_signature does not match", status_code=401)
    except Exception:
        return PlainTextResponse("the body cannot be decrypted", status_code=400)
    try:
        callback = Callback(plain)
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    with log_context(tenant_id=tenant):
        group = None
        if callback.needs_group_details:
            group, _ = await wecom_api.group_details(tenant, callback.chat_id)
            if group is None:
                log.warning("group %s details unavailable; recorded without them", callback.chat_id)
        events = group_change_events(
            callback, tenant_id=tenant, received_at=datetime.now(UTC), group=group
        )
        try:
            await publish(intake, "wecom", callback.kind, events)
        except RateLimited as exc:
            return too_many(exc)
    return PlainTextResponse("success")  # what WeCom expects of a callback receiver


@router.post("/wecom/{tenant}/archive", status_code=202, responses=answers(429))
async def wecom_archive(
    tenant: str, request: Request, principal: Operator, intake: Intakes
) -> JSONResponse:
    """Chat-archive (会话存档) records, decrypted by the tenant's archive puller:
    `{"records": [...]}`; group messages become message_posted events."""
    if principal.tenant_id != tenant:
        return _error(403, "this API key belongs to another tenant")
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        return _error(400, "body: not valid JSON")
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_BATCH:
        return JSONResponse(
            {"error": f"records: a list of 1 to {MAX_BATCH} records", "field": "records"},
            status_code=422,
        )
    found, errors = archive_events(records, tenant_id=tenant, received_at=datetime.now(UTC))
    ignored = len(records) - len(found) - len(errors)  # not group messages
    try:
        results = await publish(intake, "wecom", "archive", [e for _, e in found])
    except RateLimited as exc:
        return too_many(exc)
    errors += [
        f"records.{i}.{r.error}"
        for (i, _), r in zip(found, results, strict=True)
        if r.status == "rejected"
    ]
    answer = {**_counts(results), "ignored": ignored, "rejected": errors}
    return JSONResponse(answer, status_code=202)
