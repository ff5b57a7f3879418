"""Every request is counted and timed by its route's path (not the path asked, which would be
a label per id) and its status, the refusals of the app's own handlers included."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from prometheus_client import REGISTRY

from services.runtime.auth import Authenticator
from services.runtime.http import create_app
from services.runtime.refusals import NotFound
from services.runtime.store import client

router = APIRouter()


@router.get("/v1/things/{thing_id}")
async def thing(thing_id: str) -> dict[str, str]:
    if thing_id == "missing":
        raise NotFound("no thing of this id", "thing_id")
    return {"thing_id": thing_id}


def _count(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("shequn_http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_and_status() -> None:
    mongo = client("mongodb://127.0.0.1:1")  # never reached: nothing here authenticates
    auth = Authenticator(mongo, "shequn_", 0)

    async def ready() -> dict[str, bool]:
        return {"all": True}

    app = create_app(service="test", auth=auth, readiness=ready, routers=[router])
    before = [_count("GET", "/v1/things/{thing_id}", s) for s in ("200", "404")]
    unmatched = _count("GET", "unmatched", "404")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/v1/things/a")).status_code == 200
        assert (await http.get("/v1/things/b")).status_code == 200
        assert (await http.get("/v1/things/missing")).status_code == 404
        assert (await http.get("/nowhere")).status_code == 404
    await mongo.close()
    after = [_count("GET", "/v1/things/{thing_id}", s) for s in ("200", "404")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1]
    assert _count("GET", "unmatched", "404") - unmatched == 1
