"""What an operation refuses, said once for every edge: HTTP answers a refusal with its status
and `{"error", "field"}`, gRPC with the matching status code and the same message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class Refused(Exception):
    status: ClassVar[int]  # the HTTP status; rpc.py maps it to a gRPC status code

    def __init__(self, error: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {error}" if field else error)
        self.field = field

    def body(self) -> dict[str, str]:
        return {"error": str(self), **({"field": self.field} if self.field else {})}


class Invalid(Refused):
    """Bad input, naming the field."""

    status = 422

    def __init__(self, field: str, error: str) -> None:
        super().__init__(error, field)


class OverLimit(Refused):
    """A limit the request would exceed; the error names it."""

    status = 422


class Forbidden(Refused):
    """The caller's role may not do this."""

    status = 403


class NotFound(Refused):
    """Nothing of that id in the caller's tenant (another tenant's is not found either)."""

    status = 404


class Conflict(Refused):
    """The request is valid but the state does not allow it (now or any more)."""

    status = 409


def invalid(errors: Sequence[Mapping[str, Any]], body: Any = None) -> Invalid:
    """The first of pydantic's errors as a refusal naming its field (`penalties.window_days`),
    without FastAPI's `body`/`query`/`path` and without the tag of a tagged union's member
    (`{"type": "send_text"}` fails as `text`, not `send_text.text`)."""
    error = errors[0]
    loc = [str(p) for p in error["loc"] if p not in ("body", "query", "path")]
    tag = body.get("type") if isinstance(body, Mapping) else None
    if len(loc) > 1 and loc[0] == tag:
        loc = loc[1:]
    return Invalid(".".join(loc) or "body", error["msg"])


def valid(model: type[M], body: Any) -> M:
    """`body` as the model (the edges' JSON or Structs), or the refusal naming its first fault;
    a body that is the model already (an HTTP route's, validated by FastAPI) as it is."""
    if isinstance(body, model):
        return body
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc.errors()) from None
