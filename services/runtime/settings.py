"""One typed settings object, read from SHEQUN_* environment variables and validated at start."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRETS_KEY = "development-only: set SHEQUN_SECRETS_KEY in production"


class Settings(BaseSettings):
    # Secrets may also be files named as their variables (SHEQUN_MONGO_URL, ...) in the folder
    # SHEQUN_SECRETS_DIR names, as Kubernetes mounts Secrets: unlike variables, files are not
    # passed to child processes nor shown in the pod's description.
    model_config = SettingsConfigDict(
        env_prefix="SHEQUN_", extra="ignore", secrets_dir=os.environ.get("SHEQUN_SECRETS_DIR")
    )

    env: Literal["development", "production"] = "development"
    service: str = Field("shequn", description="name of the running service; set by its runner")
    log_level: str = "INFO"

    default_timezone: str = Field(
        "Asia/Shanghai", description="tenants' time zone for days and schedules until they set one"
    )

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL"] = Field(
        "PLAINTEXT", description="SSL for a TLS listener (Strimzi's, with mutual TLS)"
    )
    kafka_ssl_cafile: str | None = Field(None, description="the CA that signed the brokers")
    kafka_ssl_certfile: str | None = Field(
        None, description="this service's client certificate, for mutual TLS (Strimzi user.crt)"
    )
    kafka_ssl_keyfile: str | None = Field(None, description="… and its key (user.key)")
    kafka_create_topics: bool = Field(
        True,
        description="create missing topics at start; off where an operator owns them (Strimzi's"
        " KafkaTopics), then the service only checks that they exist",
    )
    kafka_idempotence: bool = Field(
        False, description="idempotent producer: on for Apache Kafka, off for the embedded broker"
    )
    kafka_partitions: int = Field(6, ge=1, description="partitions of topics the services create")
    kafka_replication: int = Field(1, ge=1)
    topic_events: str = "shequn.events.v1"
    topic_actions: str = "shequn.actions.v1"
    topic_action_results: str = "shequn.action-results.v1"
    topic_decisions: str = "shequn.decisions.v1"
    dlq_topic_prefix: str = Field("shequn.dlq.", description="+ consumer group name")
    consumer_group_prefix: str = "shequn."

    # The consumer loop
    batch_max_messages: int = Field(
        500, ge=1, description="largest batch of a consumer on the reaction path"
    )
    bulk_batch_max_messages: int = Field(
        2000, ge=1, description="the same for every other consumer: fewer writes an event"
    )
    rollup_batch_max_messages: int = Field(
        5000, ge=1, description="the same for consumers that keep counters and profiles of a day"
    )
    rollup_batch_linger_ms: int = Field(
        2000,
        ge=0,
        description="how long a consumer keeping counters and profiles of a day gathers a batch"
        " from several fetches (a group's day is written once a batch)",
    )
    batch_max_wait_ms: int = Field(50, ge=1)
    retry_attempts: int = Field(3, ge=1, description="handler attempts before isolating a message")
    retry_backoff_ms: int = Field(200, ge=0)
    outage_retry_seconds: float = Field(
        300, gt=0, description="how long a batch waits out a database or broker outage"
    )
    dlq_max_consecutive: int = Field(
        50, ge=1, description="dead-lettered in a row before the consumer stops instead"
    )
    dlq_max_ratio: float = Field(
        0.5, gt=0, le=1, description="share of recent messages dead-lettered that stops it too"
    )
    dlq_ratio_window_seconds: float = Field(60, gt=0, description="… of the messages of this long")
    dlq_ratio_min_messages: int = Field(
        100, ge=1, description="… once the window holds at least this many"
    )
    kafka_fetch_max_wait_ms: int = Field(
        20,
        ge=1,
        description="longest a fetch of a consumer on the reaction path (moderation, delivery)"
        " waits for records (the broker may hold it this long)",
    )
    kafka_bulk_fetch_max_wait_ms: int = Field(
        500,
        ge=1,
        description="the same for every other consumer: fewer, fuller fetches",
    )
    kafka_max_poll_interval_ms: int = Field(
        300_000, ge=1000, description="a consumer not polling this long leaves its group"
    )

    # MongoDB
    mongo_url: str = Field(
        "mongodb://127.0.0.1:27017", description="the server of this service's own database"
    )
    timeline_mongo_url: str | None = Field(
        None,
        description="the server of ingestion's timeline (every event and action, by group), the"
        " busiest collection; default mongo_url",
    )
    identity_mongo_url: str | None = Field(
        None, description="the server of the identity database (API keys); default mongo_url"
    )
    mongo_db_prefix: str = Field("shequn_", description="database = prefix + service name")
    expiry_sweep_seconds: float = Field(
        60.0, gt=0, description="how often expired documents (dedupe keys, timeline) are deleted"
    )

    shutdown_seconds: float = Field(
        25,
        gt=0,
        description="after SIGTERM, how long consumers may take to finish and commit the batch"
        " in hand; what they have not committed by then is read again after the restart",
    )

    # Servers
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="larger request bodies are refused with 413"
    )
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051

    # Auth
    auth_cache_seconds: float = Field(30.0, ge=0, description="how long a key lookup is reused")

    # Ingestion
    ingest_rate_per_tenant: float = Field(2000.0, gt=0, description="events/s a tenant may send")
    ingest_burst_per_tenant: int = Field(10_000, ge=500)
    ingest_dedupe_days: int = Field(7, ge=1)
    ingest_max_ahead_seconds: float = Field(
        600, ge=0, description="how far after its receipt an event's occurred_at may be"
    )

    # Outbound requests (platform APIs, pictures)
    outbound_allow_private_hosts: bool = Field(
        False,
        description="let outbound requests (platform APIs, pictures) reach loopback, private and "
        "link-local addresses too, for local stand-ins; off, they are refused (SSRF)",
    )

    # Platforms
    secrets_key: str | None = Field(
        None,
        description="encrypts platform credentials at rest (ingestion); any long random string",
    )
    timeline_retention_days: int = Field(30, ge=1)
    delivery_attempts: int = Field(4, ge=1, description="tries of one action on transient errors")
    delivery_backoff_ms: int = Field(500, ge=0)
    delivery_max_retry_after_seconds: float = Field(
        300, gt=0, description="longest wait a platform may ask for; asking more fails the action"
    )
    delivery_max_wait_seconds: float = Field(
        600, gt=0, description="an action not sent this long after it arrived fails"
    )
    delivery_max_waiting: int = Field(
        10_000, ge=1, description="actions waiting per partition before it is paused"
    )
    telegram_api_base: str = "https://api.telegram.org"
    telegram_group_messages_per_minute: float = Field(20, gt=0)
    telegram_bot_messages_per_second: float = Field(30, gt=0)
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_calls_per_second: float = Field(
        10, gt=0, description="per corp, under WeCom's per-app frequency limits"
    )

    # Campaign: SOP schedules (群SOP)
    sop_grace_minutes: float = Field(
        10,
        ge=0,
        description="a slot missed (the service down) fires late within this, else is missed",
    )
    sop_max_groups: int = Field(1000, ge=1, description="groups one schedule may reach")

    # Campaign: broadcasts (群群发)
    broadcast_max_groups: int = Field(200, ge=1, description="groups one broadcast may reach")
    wecom_group_messages_per_day: int = Field(
        1, ge=1, description="group messages a WeCom customer group receives a day (its quota)"
    )

    # Campaign: short-term activity groups (短期活动群)
    activity_dismiss_days: int = Field(
        3, ge=0, le=90, description="days after an activity group's end day that it is dismissed"
    )

    # Campaign: group handover (离职继承)
    wecom_transfers_per_day: int = Field(
        300, ge=1, description="a resigned staff member's groups WeCom transfers a day"
    )
    handover_attempts: int = Field(
        3, ge=1, description="tries of a group the platform refused to transfer, then failed"
    )

    # Campaign: group live codes (群活码)
    livecode_reservation_minutes: float = Field(
        10, gt=0, description="a scan holds a place in its group this long, waiting for the join"
    )
    livecode_low_free: int = Field(
        20, ge=0, description="free places left in a live code's pool below which it is low"
    )
    livecode_scans_per_second: float = Field(
        1000, gt=0, description="public scans of one live code a second (bursts twice that)"
    )
    livecode_scans_per_address: float = Field(
        5, gt=0, description="public scans from one client address a second (bursts of 20)"
    )
    public_url: str = Field(
        "",
        max_length=500,
        description="where people reach the public routes (the ingress): links in invitations"
        " start with it",
    )
    trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1"],
        description="peers whose X-Forwarded-For names the client (the ingress in front):"
        " addresses or networks, e.g. the pod network 10.0.0.0/8",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            ipaddress.ip_network(proxy, strict=False)  # a ValueError names the one that is not
        return proxies

    # Moderation: QR codes in pictures (二维码广告)
    picture_qr_codes: bool = Field(
        True, description="fetch the pictures posted in groups and treat their QR codes as ads"
    )
    picture_fetch_timeout_seconds: float = Field(
        3.0, gt=0, description="longest one picture may take to download; a batch waits for it"
    )
    picture_max_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="larger pictures are not downloaded or read"
    )
    picture_fetch_concurrency: int = Field(8, ge=1, description="downloads at once per batch")
    picture_batch_budget_seconds: float = Field(
        5.0, gt=0, description="longest a batch waits for its pictures; the rest go unread"
    )

    @model_validator(mode="after")
    def _production_needs_real_infrastructure(self) -> Settings:
        if self.kafka_security_protocol == "SSL" and not self.kafka_ssl_cafile:
            raise ValueError("SHEQUN_KAFKA_SSL_CAFILE is required with SSL")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("SHEQUN_KAFKA_SSL_CERTFILE and _KEYFILE go together")
        if self.env != "production":
            return self
        for name in ("kafka_bootstrap", "mongo_url", "identity_mongo_url", "timeline_mongo_url"):
            if _loopback(value := getattr(self, name)):
                raise ValueError(
                    f"SHEQUN_{name.upper()} must not point at this machine in production"
                )
            if _placeholder(value):
                raise ValueError(f"SHEQUN_{name.upper()} holds a placeholder password")
        if self.secrets_key is not None and (
            _placeholder(self.secrets_key) or len(self.secrets_key) < 16
        ):
            raise ValueError("SHEQUN_SECRETS_KEY must be a secret of its own (16+ characters)")
        return self

    @property
    def credentials_key(self) -> str:
        """The key that platform credentials are encrypted with: a development default, and
        in production only the one given (a service that never needs it is not given it)."""
        if self.secrets_key is not None:
            return self.secrets_key
        if self.env == "production":
            raise ValueError("SHEQUN_SECRETS_KEY is required in production")
        return DEVELOPMENT_SECRETS_KEY

    @property
    def kafka_tls_files(self) -> list[str]:
        """The certificate files the Kafka clients read at start."""
        files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        return [f for f in files if f] if self.kafka_security_protocol == "SSL" else []

    @property
    def identity_url(self) -> str:
        return self.identity_mongo_url or self.mongo_url

    @property
    def timeline_url(self) -> str:
        return self.timeline_mongo_url or self.mongo_url

    def database_name(self, service: str | None = None) -> str:
        return f"{self.mongo_db_prefix}{service or self.service}"

    def consumer_group(self, consumer: str) -> str:
        return f"{self.consumer_group_prefix}{consumer}"

    def dlq_topic(self, consumer: str) -> str:
        return f"{self.dlq_topic_prefix}{consumer}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


# What example files and documentation put where a secret goes.
_PLACEHOLDERS = ("changeme", "replaceme", "placeholder", "developmentonly", "yourpassword")


def _placeholder(value: str | None) -> bool:
    squeezed = "".join(c for c in (value or "").lower() if c.isalnum())
    return any(word in squeezed for word in _PLACEHOLDERS)


def _loopback(address: str | None) -> bool:
    """Whether a URL or a host:port list names this machine (127.x, ::1, localhost)."""
    for part in (address or "").replace(",", " ").split():
        host = urlsplit(part if "//" in part else f"//{part}").hostname or ""
        if host == "localhost" or host.startswith("127.") or host == "::1":
            return True
    return False
