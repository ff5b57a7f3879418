"""What every HTTP API answers besides success, across services: one error shape, dates that are
dates, ids that follow the id rule, the role table of POST /v1/actions, and OpenAPI documents
that list it all."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.conftest import Stack, Tenant


@pytest.mark.parametrize("to", ["0001-01-01", "0.5", "0", "2026-13-01", "2100-01-01", "yesterday"])
async def test_a_day_that_is_not_a_day_is_422_naming_it(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, to: str
) -> None:
    response = await http.get(
        stack.http("analytics") + "/v1/stats/groups/0/daily",
        params={"to": to},
        headers=tenant.headers("viewer"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "to"


async def test_the_earliest_days_answer(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    response = await http.get(
        stack.http("analytics") + "/v1/stats/groups/0/daily",
        params={"to": "1970-01-01"},
        headers=tenant.headers("viewer"),
    )
    assert response.status_code == 200
    assert [d["date"] for d in response.json()["days"]] == ["1970-01-01"]


async def test_refusals_have_one_shape_everywhere(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    actions = stack.http("ingestion") + "/v1/actions"
    json_type = {**tenant.headers("operator"), "Content-Type": "application/json"}
    garbage = await http.post(actions, content=b"{garbage", headers=json_type)
    assert garbage.status_code == 400 and garbage.json() == {
        "error": "body: not valid JSON",
        "field": "body",
    }
    untyped = await http.post(actions, content=b"\xff{garbage", headers=tenant.headers("operator"))
    assert untyped.status_code == 422 and untyped.json()["field"] == "body"
    for url in (stack.http("ingestion") + "/v1/nothing", stack.http("moderation") + "/nothing"):
        missing = await http.get(url)
        assert missing.status_code == 404 and set(missing.json()) == {"error"}
    wrong_method = await http.delete(actions)
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == {"error"}


async def test_actions_follow_the_role_table_and_are_bounded(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("ingestion") + "/v1/actions"
    group = f"g-{uuid.uuid4().hex[:8]}"

    async def ask(role: str, **action: object) -> httpx.Response:
        return await http.post(
            url, json={"group_id": group, **action}, headers=tenant.headers(role)
        )

    dismiss = {"type": "dismiss_group"}
    assert (await ask("viewer", type="send_text", text="hi")).status_code == 403
    assert (await ask("operator", type="send_text", text="hi")).status_code == 202
    for admins_only in (
        dismiss,
        {"type": "kick_member", "member_id": "u-1"},
        {"type": "delete_message", "message_id": "m-1"},
        {"type": "rename_group", "name": "新群名"},
    ):
        refused = await ask("operator", **admins_only)
        assert refused.status_code == 403, admins_only
        assert "admin" in refused.json()["error"]
    assert (await ask("admin", **dismiss)).status_code == 202
    oversized: dict[str, dict[str, object]] = {
        "mentions": {"type": "send_text", "text": "hi", "mentions": [f"u{i}" for i in range(101)]},
        "description": {
            "type": "send_link_card", "title": "t", "url": "https://x.cn",
            "description": "d" * 5000,
        },
        "text": {"type": "send_text", "text": "x" * 4001},
        "reason": {"type": "kick_member", "member_id": "u-1", "reason": "r" * 5000},
    }  # fmt: skip
    for field, action in oversized.items():
        response = await ask("owner", **action)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["field"] == field


async def test_openapi_documents_list_the_refusals_and_the_csv(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    ingestion = (await http.get(stack.http("ingestion") + "/openapi.json")).json()
    events = ingestion["paths"]["/v1/events"]["post"]["responses"]
    assert {"202", "400", "401", "403", "413", "422", "429", "503"} <= set(events)
    assert events["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert "Error" in ingestion["components"]["schemas"]
    timeline = ingestion["paths"]["/v1/groups/{group_id}/timeline"]["get"]["responses"]
    assert "404" in timeline
    moderation = (await http.get(stack.http("moderation") + "/openapi.json")).json()
    assert "409" in moderation["paths"]["/v1/dedupe/plans/{plan_id}/apply"]["post"]["responses"]
    analytics = (await http.get(stack.http("analytics") + "/openapi.json")).json()
    daily = analytics["paths"]["/v1/stats/groups/{group_id}/daily"]["get"]["responses"]
    assert "text/csv" in daily["200"]["content"]


async def test_group_ids_a_stranger_invents_cost_no_memory(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """3,000 viewer requests for rulesets of random 8,000-character group ids grew moderation
    by 24.6 MB: ids follow the id rule, and what is cached is bounded."""
    url = stack.http("moderation") + "/v1/rulesets/groups/"

    async def strangers(count: int) -> None:
        for _ in range(0, count, 50):
            answers = await asyncio.gather(
                *(
                    http.get(url + uuid.uuid4().hex * 250, headers=tenant.headers("viewer"))
                    for _ in range(50)
                )
            )
            assert {a.status_code for a in answers} == {422}

    await strangers(200)
    before = stack.memory_kib("moderation")
    await strangers(3000)
    grown = stack.memory_kib("moderation") - before
    assert grown < 5_000, f"moderation grew by {grown} KiB"


def _untyped(schema: dict[str, object]) -> bool:
    return not {"$ref", "properties", "oneOf", "anyOf"} & set(schema)


async def test_request_bodies_are_typed_in_the_openapi_documents(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """An integrator reads each body's fields off the OpenAPI document, not `object`; the
    untyped bodies are groups' overrides, which are any part of the tenant's settings."""
    untyped = []
    for service in ("ingestion", "moderation", "engagement", "campaign", "analytics"):
        document = (await http.get(stack.http(service) + "/openapi.json")).json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                body = operation.get("requestBody", {}).get("content", {})
                schema = body.get("application/json", {}).get("schema")
                if schema is not None and _untyped(schema):
                    untyped.append(f"{method.upper()} {path}")
    assert untyped == [
        "PUT /v1/rulesets/groups/{group_id}",
        "PUT /v1/engagement/settings/groups/{group_id}",
    ]
