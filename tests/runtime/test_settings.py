"""Settings refuse, at start, what would be a mistake in production: development addresses and
the placeholder secrets of example files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.runtime.settings import DEVELOPMENT_SECRETS_KEY, Settings

REAL = {
    "env": "production",
    "kafka_bootstrap": "shequn-kafka-bootstrap.shequn.svc:9093",
    "mongo_url": "mongodb://analytics:s3cr3t-2f9a@shequn-mongodb-svc.shequn.svc:27017/",
}


def test_production_takes_real_addresses_and_secrets() -> None:
    settings = Settings.model_validate({**REAL, "secrets_key": "9f2c1e7a4b8d3f60a1c5e9b7d2f4a6c8"})
    assert settings.credentials_key == "9f2c1e7a4b8d3f60a1c5e9b7d2f4a6c8"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mongo_url", "mongodb://127.0.0.1:27017"),
        ("mongo_url", "mongodb://localhost:27017"),
        ("mongo_url", "mongodb://shequn:CHANGE-ME-mongo-password@mongodb-0.mongodb:27017/"),
        ("identity_mongo_url", "mongodb://keys:changeme@mongo:27017/"),
        ("timeline_mongo_url", "mongodb://[::1]:27017"),
        ("kafka_bootstrap", "kafka:9092,127.0.0.1:9092"),
        ("secrets_key", "CHANGE-ME-secrets-key"),
        ("secrets_key", DEVELOPMENT_SECRETS_KEY),
        ("secrets_key", "too-short"),
    ],
)
def test_production_refuses_development_addresses_and_placeholders(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"SHEQUN_{field.upper()}"):
        Settings.model_validate({**REAL, field: value})
    Settings.model_validate({**REAL, "env": "development", field: value})  # fine on a laptop


def test_the_credentials_key_is_required_only_where_it_is_used() -> None:
    # Only ingestion encrypts platform credentials; the other services are not given the key.
    settings = Settings.model_validate(REAL)
    with pytest.raises(ValueError, match="SHEQUN_SECRETS_KEY is required"):
        _ = settings.credentials_key
    assert Settings().credentials_key == DEVELOPMENT_SECRETS_KEY


def test_tls_needs_its_files() -> None:
    with pytest.raises(ValidationError, match="SHEQUN_KAFKA_SSL_CAFILE"):
        Settings(kafka_security_protocol="SSL")
    with pytest.raises(ValidationError, match="go together"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_cafile="ca.crt", kafka_ssl_certfile="u")


def test_secrets_can_be_files_as_kubernetes_mounts_them(tmp_path: Path) -> None:
    (tmp_path / "SHEQUN_MONGO_URL").write_text(REAL["mongo_url"])
    (tmp_path / "SHEQUN_SECRETS_KEY").write_text("9f2c1e7a4b8d3f60a1c5e9b7d2f4a6c8\n")
    read = subprocess.run(
        [
            sys.executable, "-c",
            "from services.runtime.settings import Settings; s = Settings();"
            " print(s.mongo_url, s.credentials_key)",
        ],
        env={**os.environ, "SHEQUN_SECRETS_DIR": str(tmp_path), "SHEQUN_ENV": "production",
             "SHEQUN_KAFKA_BOOTSTRAP": REAL["kafka_bootstrap"]},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert read.stdout.split() == [REAL["mongo_url"], "9f2c1e7a4b8d3f60a1c5e9b7d2f4a6c8"]


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings(trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies=["the-ingress"])
