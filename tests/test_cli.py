"""The key administration an operator does with `shequn` (on a cluster, in k8s/tools/keys.yaml)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from services.runtime.auth import Authenticator, AuthError, Role
from services.runtime.store import client
from tests.conftest import Stack


def _shequn(stack: Stack, *args: str, given: str = "") -> str:
    env = {**os.environ, "SHEQUN_MONGO_URL": stack.mongo}
    done = subprocess.run(
        [sys.executable, "-m", "services.devtools.cli", *args],
        input=given, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


async def test_a_key_created_works_and_once_revoked_is_refused(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    key = _shequn(stack, "create-key", "--tenant", "t-cli", "--role", "viewer", "--name", "ops")
    answer = await http.get(
        stack.http("analytics") + "/v1/stats/settings", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200

    # The key comes on standard input, never as an argument the process list would show.
    assert _shequn(stack, "revoke-key", given=key + "\n") == "revoked"
    mongo = client(stack.mongo)
    try:
        with pytest.raises(AuthError, match="revoked"):
            await Authenticator(mongo, "shequn_", 0).authenticate(key, Role.VIEWER)
    finally:
        await mongo.close()
