"""`POST /v1/events`: every bad input gets the documented status and stores nothing wrong."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.ingestion.admission import MAX_LINK_URL
from services.runtime.store import client
from services.runtime.wellformed import MAX_MEDIA_URL
from tests.clients import count, group_day, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually, stays


async def _stored(stack: Stack, tenant: Tenant, event_ids: list[str]) -> set[str]:
    mongo = client(stack.mongo)
    try:
        ids = [f"{tenant.id}:{e}" for e in event_ids]
        docs = mongo["shequn_ingestion"]["events"].find({"_id": {"$in": ids}}, {"_id": 1})
        return {d["_id"].split(":", 1)[1] async for d in docs}
    finally:
        await mongo.close()


async def test_a_body_that_is_not_json_is_400(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        stack.http("ingestion") + "/v1/events",
        content=b"{not json",
        headers=tenant.headers("operator"),
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    over = b"[" + b" " * (16 * 1024 * 1024) + b"]"

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(over), 1 << 20):
            yield over[start : start + (1 << 20)]

    for content in (over, streamed()):
        response = await http.post(
            stack.http("ingestion") + "/v1/events",
            content=content,
            headers=tenant.headers("operator"),
        )
        assert response.status_code == 413
        assert response.json()["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([1, 2], "body"),
        ({"events": "nope"}, "events"),
        ({"events": []}, "events"),
    ],
)
async def test_a_body_of_the_wrong_shape_is_422(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await http.post(
        stack.http("ingestion") + "/v1/events", json=body, headers=tenant.headers("operator")
    )
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_a_batch_of_501_is_refused_whole(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    events = [message(group) for _ in range(501)]
    response = await post_events(http, stack, tenant, events)
    assert response.status_code == 422
    assert "at most 500" in response.json()["error"]
    assert await _stored(stack, tenant, [e["event_id"] for e in events]) == set()


async def test_bad_items_are_rejected_by_field_and_the_good_ones_accepted(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    good = message(group)
    no_id = {k: v for k, v in message(group).items() if k != "event_id"}
    unknown_type = {**message(group), "type": "message_edited"}
    bad_time = {**message(group), "occurred_at": "22/11/2026 08:00"}
    wrong_type = {**message(group), "group_id": 1001}
    no_member = {k: v for k, v in message(group).items() if k != "member"}
    other_tenant = {**message(group), "tenant_id": "someone-else"}
    response = await post_events(
        http,
        stack,
        tenant,
        [good, no_id, unknown_type, bad_time, wrong_type, no_member, other_tenant],
    )
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] + ["rejected"] * 6
    errors = [r["error"] for r in results[1:]]
    assert errors[0].startswith("event_id: required")
    assert errors[1].startswith("type: unknown event type 'message_edited'")
    assert errors[2].startswith("occurred_at: not an ISO-8601 timestamp")
    assert errors[3].startswith("group_id: ")
    assert errors[4].startswith("member: required")
    assert errors[5].startswith("tenant_id: does not match")

    sent = [
        e["event_id"] for e in (good, unknown_type, bad_time, wrong_type, no_member, other_tenant)
    ]
    assert await _stored(stack, tenant, sent) == {good["event_id"]}
    await eventually(lambda: group_day(http, stack, tenant, group), lambda r: r["messages"] == 1)
    await stays(lambda: count(http, stack, tenant, group, "messages"), 1)


async def test_a_picture_url_over_its_cap_is_rejected_and_one_under_it_accepted(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"

    def picture(url: str) -> dict[str, Any]:
        posted = message(group)
        return {**posted, "message": {**posted["message"], "kind": "image", "media_url": url}}

    inline = "data:image/png;base64,"
    large = picture(inline + "A" * (MAX_MEDIA_URL - len(inline)))  # past other strings' 20,000
    huge = picture(inline + "A" * 3 * 1024 * 1024)  # several MB: over Kafka's message limit
    long_link = picture("https://cdn.example.com/" + "a" * MAX_LINK_URL)
    response = await post_events(http, stack, tenant, [large, huge, long_link])
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert all(
        r["error"].startswith("message_posted.message.media_url: too long") for r in results[1:]
    )
    assert await _stored(stack, tenant, [e["event_id"] for e in (large, huge, long_link)]) == {
        large["event_id"]
    }
    await eventually(lambda: group_day(http, stack, tenant, group), lambda r: r["messages"] == 1)


async def test_an_event_too_big_for_one_kafka_message_is_rejected(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    crowd = message(group)
    crowd["message"]["mentions"] = [f"u-{i}" for i in range(1_001)]
    heavy = message(group)
    heavy["message"]["urls"] = ["https://example.com/" + "a" * 19_000] * 50  # ~950 KB
    fine = message(group)
    fine["message"]["mentions"] = [f"u-{i}" for i in range(1_000)]
    response = await post_events(http, stack, tenant, [crowd, heavy, fine])
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "accepted"]
    assert results[0]["error"].startswith("message_posted.message.mentions: ")
    assert "bytes once encoded" in results[1]["error"]


async def test_keys_and_roles(stack: Stack, tenant: Tenant, http: httpx.AsyncClient) -> None:
    url = stack.http("ingestion") + "/v1/events"
    event = message(f"g-{uuid.uuid4().hex[:8]}")
    assert (await http.post(url, json=event)).status_code == 401
    wrong = {"Authorization": "Bearer sq_not-a-real-key-at-all"}
    assert (await http.post(url, json=event, headers=wrong)).status_code == 401
    response = await http.post(url, json=event, headers=tenant.headers("viewer"))
    assert response.status_code == 403
    assert "operator" in response.json()["error"]
    assert await _stored(stack, tenant, [event["event_id"]]) == set()


async def test_another_tenants_key_sees_and_changes_nothing_of_this_tenant(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    other = await create_tenant(stack)
    event = message(group)
    await post_events(http, stack, tenant, event)
    await eventually(lambda: group_day(http, stack, tenant, group), lambda r: r["messages"] == 1)

    # The same event id under the other tenant is that tenant's own, separate event.
    response = await post_events(http, stack, other, event)
    assert response.json()["results"][0]["status"] == "accepted"
    await eventually(lambda: group_day(http, stack, other, group), lambda r: r["messages"] == 1)
    assert (await group_day(http, stack, tenant, group))["messages"] == 1

    # A third tenant reading the same group id sees nothing.
    third = await create_tenant(stack)
    assert (await group_day(http, stack, third, group))["messages"] == 0


async def test_a_flood_gets_429_with_retry_after(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    statuses = []
    for _ in range(3):
        response = await post_events(http, stack, tenant, [message(group) for _ in range(500)])
        statuses.append(response.status_code)
    assert statuses == [202, 202, 429]
    assert int(response.headers["Retry-After"]) >= 1


async def test_openapi_documents_the_event_format(stack: Stack, http: httpx.AsyncClient) -> None:
    document = (await http.get(stack.http("ingestion") + "/openapi.json")).json()
    assert "/v1/events" in document["paths"]
    assert "MessagePostedIn" in document["components"]["schemas"]


async def test_refused_items_use_up_no_rate_limit_tokens(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """The stack allows a burst of 1,000 events: 1,500 refused items, then 500 good ones."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    refused = [
        [message(group, occurred_at=ahead) for _ in range(500)],  # refused by the intake
        [message(group, member={"id": "u 1"}) for _ in range(500)],  # by the JSON format
        [message(group, occurred_at=ahead) for _ in range(500)],
    ]
    for items in refused:
        response = await post_events(http, stack, tenant, items)
        assert response.status_code == 202, response.text
        assert {r["status"] for r in response.json()["results"]} == {"rejected"}
    [first] = response.json()["results"][:1]
    assert first["error"].startswith("occurred_at: more than 600 s after")
    good = await post_events(http, stack, tenant, [message(group) for _ in range(500)])
    assert good.status_code == 202
    assert {r["status"] for r in good.json()["results"]} == {"accepted"}
