"""The OpenAPI documents of every service say what each operation can answer besides success,
in the one error shape every refusal has (`{"error", "field"?}`), so that an integrator's client
generator knows them: the answers any API call can get (401, 403, 413, 422, 503), 400 where a
body is read, 404 where a path names something, and what a route declares with `answers`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, `field: reason` for input"},
        "field": {"type": "string", "description": "the field refused, where there is one"},
    },
}
MEANING = {
    400: "the body is not valid JSON",
    401: "no API key, or an unknown or revoked one (webhooks: the platform's signature fails)",
    403: "the key's role may not do this, or the key belongs to another tenant",
    404: "nothing of that id in the caller's tenant",
    409: "valid, but the state does not allow it (now or any more)",
    413: "the request body is over the limit",
    422: "a field is refused; `field` names it",
    429: "too many requests for this tenant; `Retry-After` says when to try again",
    503: "the broker or the database is unreachable; sending the same request again is safe",
}
_EVERY_CALL = (401, 403, 413, 422, 503)


def _response(status: int) -> dict[str, Any]:
    return {
        "description": MEANING[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` for the refusals particular to it (409, 429)."""
    return {status: _response(status) for status in statuses}


CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}  # ?format=csv


def complete(document: dict[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """Add the error answers and the extra component schemas to a generated document."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update({**schemas, "Error": ERROR})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            statuses = set(_EVERY_CALL)
            if "requestBody" in operation:
                statuses.add(400)
            if "{" in path:
                statuses.add(404)
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                responses[str(status)] = _response(status)
    return document
