"""HTTP: `POST /v1/events` (API.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from services.gen.shequn.v1 import events_pb2
from services.ingestion.admission import Rejected
from services.ingestion.events import MAX_BATCH, event_id_of, parse_item, to_event
from services.ingestion.intake import Intake, ItemResult, refused
from services.runtime.http import Operator, provided
from services.runtime.openapi import answers
from services.runtime.ratelimit import RateLimited, too_many

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {
                            "type": "object",
                            "required": ["events"],
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "maxItems": MAX_BATCH,
                                    "items": {"$ref": "#/components/schemas/Event"},
                                }
                            },
                        },
                    ]
                }
            }
        },
    }
}


def _refuse(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": f"{field}: {reason}", "field": field}, status_code=status)


def _items(body: Any) -> list[Any] | JSONResponse:
    if isinstance(body, dict) and "events" in body:
        items = body["events"]
        if not isinstance(items, list):
            return _refuse(422, "events", "must be a list of event objects")
        if not items:
            return _refuse(422, "events", "at least one event is required")
        if len(items) > MAX_BATCH:
            return _refuse(422, "events", f"at most {MAX_BATCH} events, got {len(items)}")
        return items
    if isinstance(body, dict):
        return [body]
    return _refuse(422, "body", 'must be an event object or {"events": [...]}')


Intakes = Annotated[Intake, Depends(provided(Intake))]
router = APIRouter(prefix="/v1", tags=["events"])


@router.post("/events", status_code=202, openapi_extra=_BODY_DOC, responses=answers(429))
async def post_events(request: Request, principal: Operator, intake: Intakes) -> JSONResponse:
    """Publish one event or a batch of up to 500; one result per item, in order."""
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        return _refuse(400, "body", "not valid JSON")
    items = _items(body)
    if isinstance(items, JSONResponse):
        return items
    received_at = datetime.now(UTC)
    results: list[ItemResult | None] = []
    events: list[events_pb2.Event] = []
    for item in items:
        try:
            valid = parse_item(item)
            event = to_event(valid, tenant_id=principal.tenant_id, received_at=received_at)
        except Rejected as exc:
            results.append(refused(principal.tenant_id, event_id_of(item), str(exc)))
            continue
        results.append(None)
        events.append(event)
    try:
        accepted = iter(await intake.accept(events))
    except RateLimited as exc:
        return too_many(exc)
    return JSONResponse(
        {"results": [(r if r is not None else next(accepted)).as_json() for r in results]},
        status_code=202,
    )
