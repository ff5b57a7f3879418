"""API keys and roles. A key is shown once, when created; only its SHA-256 is stored (keys are
32 random bytes, so a fast hash is enough). Keys live in the identity database that the runtime
owns for all services; lookups are cached briefly so that authentication costs no round trip
per request."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache
from pymongo import AsyncMongoClient

from services.runtime.instants import stamp
from services.runtime.store import Document

IDENTITY_DATABASE = "identity"
# Tenant ids begin every natural key ("{tenant}:{group}:…"), so they are kept to a safe alphabet.
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_CACHE_LIMIT = 10_000  # entries; random keys sent by a stranger must not grow it forever


class Role(enum.IntEnum):
    """Tenant roles; a higher role can do everything a lower one can."""

    VIEWER = 1  # reports only
    OPERATOR = 2  # content and campaigns
    ADMIN = 3  # group admins (管理员)
    OWNER = 4  # 总负责: everything

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            names = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {name!r}; one of {names}") from None


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    role: Role
    key_name: str


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status  # 401 or 403


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "sq_" + secrets.token_urlsafe(32)


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Authenticator:
    def __init__(
        self, mongo: AsyncMongoClient[Document], db_prefix: str, cache_seconds: float
    ) -> None:
        self.keys = mongo[f"{db_prefix}{IDENTITY_DATABASE}"]["api_keys"]
        # Unknown keys are cached too (a stranger's guesses must not each cost a round trip),
        # so the cache is bounded in size as well as in time.
        self._cache: TTLCache[str, tuple[Principal | None]] | None = (
            TTLCache(_CACHE_LIMIT, cache_seconds) if cache_seconds > 0 else None
        )

    async def create_key(
        self, tenant_id: str, role: Role, name: str, key: str | None = None
    ) -> str:
        """Store a new key (or the given one) and return it; this is the only time it is seen."""
        if not TENANT_ID.fullmatch(tenant_id):
            raise ValueError("tenant id: 1-63 of a-z, 0-9 and '-', starting with a letter or digit")
        key = key or new_key()
        await self.keys.update_one(
            {"_id": hash_key(key)},
            {
                "$set": {"tenant_id": tenant_id, "role": role.name.lower(), "name": name},
                "$setOnInsert": {"created_at": datetime.now(UTC)},
                "$unset": {"revoked_at": ""},
            },
            upsert=True,
        )
        return key

    async def revoke(self, key: str) -> None:
        await self.keys.update_one(
            {"_id": hash_key(key)}, {"$set": {"revoked_at": stamp(datetime.now(UTC))}}
        )
        if self._cache is not None:
            self._cache.pop(hash_key(key), None)

    async def authenticate(self, key: str | None, required: Role) -> Principal:
        if not key:
            raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>'")
        principal = await self._lookup(hash_key(key))
        if principal is None:
            raise AuthError(401, "unknown or revoked API key")
        if principal.role < required:
            raise AuthError(
                403,
                f"role {principal.role.name.lower()} may not do this; "
                f"it needs {required.name.lower()} or above",
            )
        return principal

    async def _lookup(self, digest: str) -> Principal | None:
        hit = self._cache.get(digest) if self._cache is not None else None
        if hit is not None:
            return hit[0]
        doc = await self.keys.find_one({"_id": digest})
        principal = None
        if doc and not doc.get("revoked_at"):
            principal = Principal(doc["tenant_id"], Role.parse(doc["role"]), doc.get("name", ""))
        if self._cache is not None:
            self._cache[digest] = (principal,)
        return principal
