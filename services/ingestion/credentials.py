"""Platform credentials per tenant (API.md: PUT/GET /v1/platforms/{platform}).

Secrets are encrypted at rest with a key derived from SHEQUN_SECRETS_KEY (Fernet: AES-128-CBC
with an HMAC), never returned in full by any API (only their last 4 characters), and never
logged. Webhooks look them up on every delivery, so lookups are cached briefly."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from cachetools import TTLCache
from cryptography.fernet import Fernet
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.runtime.instants import stamp
from services.runtime.store import Store

PLATFORMS = "platforms"
Platform = Literal["wecom", "telegram"]


# Scheme, host and an optional path: the adapters append the method's path (and Telegram the bot
# token) to it, so a query, a fragment or credentials in it would change what is requested.
BaseUrl = Annotated[
    str,
    StringConstraints(pattern=r"^https?://[^\s/?#@]+(/[^\s?#@]*)?$", max_length=500),
    Field(description="http(s)://host[:port][/path], no query, fragment or user info"),
]
_CACHE_KEPT = 10_000


class _Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    SECRETS: ClassVar[tuple[str, ...]] = ()


class WecomCredentials(_Credentials):
    corp_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    token: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    encoding_aes_key: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9]{43}$"), Field(description="43 characters")
    ]
    secret: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    # A private deployment of WeCom (私有化) or a proxy answers at another address.
    api_base_url: BaseUrl | None = None
    agent_id: int | None = Field(
        None, ge=1, description="the application's AgentId: staff reminders are its messages"
    )
    SECRETS: ClassVar[tuple[str, ...]] = ("token", "encoding_aes_key", "secret")


class TelegramCredentials(_Credentials):
    bot_token: Annotated[
        str,
        StringConstraints(pattern=r"^\d{3,}:[A-Za-z0-9_-]{30,}$"),
        Field(description="123:ABC…"),
    ]
    secret_token: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,256}$"),
        Field(description="the secret_token given to setWebhook"),
    ]
    api_base_url: BaseUrl | None = None
    SECRETS: ClassVar[tuple[str, ...]] = ("bot_token", "secret_token")


MODELS: dict[str, type[_Credentials]] = {"wecom": WecomCredentials, "telegram": TelegramCredentials}


def redacted(credentials: _Credentials) -> dict[str, Any]:
    """What an API may show: secrets reduced to their last 4 characters."""
    shown = credentials.model_dump()
    for name in credentials.SECRETS:
        value = str(shown[name])
        # The tail of a short secret would be most of it.
        shown[name] = "…" + value[-4:] if len(value) >= 12 else "…"
    return shown


class Vault:
    def __init__(self, secrets_key: str) -> None:
        digest = hashlib.sha256(secrets_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode()).decode()


class CredentialStore:
    def __init__(self, store: Store, secrets_key: str, cache_seconds: float = 30.0) -> None:
        self.collection = store[PLATFORMS]
        self.vault = Vault(secrets_key)
        # Webhooks look credentials up for a tenant named in their URL, before any signature is
        # checked: what a stranger's requests add to it is bounded in size and in time.
        self._cache: TTLCache[str, tuple[_Credentials | None]] = TTLCache(
            _CACHE_KEPT, cache_seconds
        )

    async def put(self, tenant_id: str, platform: str, credentials: _Credentials) -> None:
        fields = credentials.model_dump()
        stored = {
            name: self.vault.seal(value) if name in credentials.SECRETS else value
            for name, value in fields.items()
        }
        await self.collection.update_one(
            {"_id": f"{tenant_id}:{platform}"},
            {
                "$set": {
                    "tenant_id": tenant_id,
                    "platform": platform,
                    "fields": stored,
                    "updated_at": stamp(datetime.now(UTC)),
                }
            },
            upsert=True,
        )
        self._cache.pop(f"{tenant_id}:{platform}", None)

    async def get(self, tenant_id: str, platform: str) -> _Credentials | None:
        key = f"{tenant_id}:{platform}"
        hit = self._cache.get(key)
        if hit is not None:
            return hit[0]
        doc = await self.collection.find_one({"_id": key})
        credentials = None
        if doc is not None:
            model = MODELS[platform]
            fields = {
                name: self.vault.open(value) if name in model.SECRETS else value
                for name, value in doc["fields"].items()
            }
            credentials = model.model_validate(fields)
        self._cache[key] = (credentials,)
        return credentials

    async def wecom(self, tenant_id: str) -> WecomCredentials | None:
        found = await self.get(tenant_id, "wecom")
        return found if isinstance(found, WecomCredentials) else None

    async def telegram(self, tenant_id: str) -> TelegramCredentials | None:
        found = await self.get(tenant_id, "telegram")
        return found if isinstance(found, TelegramCredentials) else None
