"""A tenant admin chooses where the platform adapters connect (`api_base_url`): an ingestion
process with the outbound guard on (the default; the shared test stack lifts it for its local
stand-ins) refuses private addresses when they are set, and again where each connection is
made, so a URL stored before, or a name whose DNS answer changed since, gets nowhere either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from services.ingestion.credentials import CredentialStore, TelegramCredentials, WecomCredentials
from services.runtime.store import Store
from tests.clients import BOT_TOKEN
from tests.conftest import Stack
from tests.fakes import FakeTelegram, FakeWecom, serve_fake
from tests.ingestion.isolated import Isolated, isolated_ingestion
from tests.waiting import eventually

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


async def _send(http: httpx.AsyncClient, ingestion: Isolated, platform: str, group: str) -> str:
    response = await http.post(
        f"{ingestion.url}/v1/actions",
        json={"type": "send_text", "platform": platform, "group_id": group, "text": "早上好"},
        headers=ingestion.headers,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["action_id"])


async def _finished(
    http: httpx.AsyncClient, ingestion: Isolated, group: str, action_id: str
) -> dict[str, Any]:
    async def entry() -> dict[str, Any]:
        response = await http.get(
            f"{ingestion.url}/v1/groups/{group}/timeline", headers=ingestion.headers
        )
        items = response.json()["items"]
        return next((i for i in items if i.get("action_id") == action_id), {})

    return await eventually(entry, lambda e: e.get("status", "pending") != "pending", within=60)


async def test_platform_adapters_reach_public_addresses_only(stack: Stack, tmp_path: Path) -> None:
    telegram, wecom = FakeTelegram(), FakeWecom(groups={"wr-1": {"owner": "zhangsan"}})
    async with (
        serve_fake(telegram),
        serve_fake(wecom),
        isolated_ingestion(stack, tmp_path / "ingestion.log") as ingestion,
        httpx.AsyncClient(timeout=30) as http,
    ):
        port = telegram.url.rsplit(":", 1)[1]
        refused = {
            # The path injection that was tried: the query swallowed "/bot…/sendMessage".
            f"http://127.0.0.1:{port}/internal/admin?x=": "api_base_url: String should match",
            f"http://127.1:{port}": "127.1 is not a public address",
            f"http://localhost:{port}": "localhost is not a public address",
            f"http://[::ffff:127.0.0.1]:{port}": "is not a public address",
            "http://169.254.169.254/latest": "169.254.169.254 is not a public address",
        }
        for base, error in refused.items():
            response = await http.put(
                f"{ingestion.url}/v1/platforms/telegram",
                json={"bot_token": BOT_TOKEN, "secret_token": "s3cr3t", "api_base_url": base},
                headers=ingestion.headers,
            )
            assert response.status_code == 422, (base, response.text)
            assert response.json()["field"] == "api_base_url" and error in response.json()["error"]

        # Stored anyway, as if set before this check existed: refused at connection time.
        store = Store(stack.mongo, ingestion.settings.database_name("ingestion"))
        credentials = CredentialStore(store, ingestion.settings.credentials_key)
        try:
            await credentials.put(
                ingestion.tenant_id,
                "telegram",
                TelegramCredentials(
                    bot_token=BOT_TOKEN, secret_token="s3cr3t", api_base_url=telegram.url
                ),
            )
            await credentials.put(
                ingestion.tenant_id,
                "wecom",
                WecomCredentials(
                    corp_id="ww1", token="t", encoding_aes_key=AES_KEY, secret="corp-secret",
                    api_base_url=wecom.url,
                ),
            )  # fmt: skip
        finally:
            await store.close()
        by_telegram = await _send(http, ingestion, "telegram", "-1001")
        by_wecom = await _send(http, ingestion, "wecom", "wr-1")
        for group, action_id in (("-1001", by_telegram), ("wr-1", by_wecom)):
            entry = await _finished(http, ingestion, group, action_id)
            assert entry["status"] == "failed"
            assert entry["reason"] == "refused: api_base_url 127.0.0.1 is not a public address"
    assert telegram.calls == [] and wecom.calls == [], "nothing reached the private address"
