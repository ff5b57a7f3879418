"""Every object of both overlays and of k8s/tools/ is valid against its published schema:
Kubernetes' own (kubernetes-validate --strict) for core objects, and the CRD schemas of
Strimzi, the Prometheus Operator, the MongoDB operator and the Gateway API for theirs."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.k8s import CUSTOM, OVERLAYS, Object, of_kind, rendered, strict_schema, tools

pytestmark = pytest.mark.k8s
# The oldest and newest Kubernetes the manifests are checked against.
KUBERNETES = ("1.31", "1.37")


def _problems(obj: Object) -> list[str]:
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    custom = CUSTOM.get((obj["apiVersion"], obj["kind"]))
    if custom is not None:
        validator = jsonschema.Draft7Validator(strict_schema(custom))
        return [
            f"{where}: {'/'.join(map(str, e.path))}: {e.message}"
            for e in validator.iter_errors(obj)
        ]
    problems = []
    for version in KUBERNETES:
        try:
            kubernetes_validate.validate(copy.deepcopy(obj), version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(map(str, error.path))
            problems.append(f"{where} (Kubernetes {version}): {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{where}: no schema for {obj['apiVersion']} {obj['kind']}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_the_overlay_is_valid(overlay: str) -> None:
    objects = rendered(overlay)
    assert [p for obj in objects for p in _problems(obj)] == []
    kinds = {o["kind"] for o in objects}
    # Every kind of operator object is there, so that each schema above was used.
    assert {kind for _, kind in CUSTOM} <= kinds


def test_the_tools_are_valid() -> None:
    assert [p for obj in tools() for p in _problems(obj)] == []


def test_the_strict_schemas_find_what_the_api_server_would_drop() -> None:
    # A field misspelt at any depth: in a Strimzi listener, a KafkaUser ACL, a core Deployment.
    kafka = copy.deepcopy(of_kind(rendered("prod"), "Kafka")["shequn"])
    kafka["spec"]["kafka"]["listeners"][0]["authentification"] = {"type": "tls"}
    user = copy.deepcopy(of_kind(rendered("prod"), "KafkaUser")["shequn-analytics"])
    user["spec"]["authorization"]["acls"][0]["operation"] = "Read"
    deployment = copy.deepcopy(of_kind(rendered("prod"), "Deployment")["analytics"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    assert [len(_problems(o)) > 0 for o in (kafka, user, deployment)] == [True, True, True]
