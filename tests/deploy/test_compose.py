"""deploy/compose.yaml, checked without Docker: valid against the Compose Specification's
schema (tests/data/schemas/compose-spec), and everything it names exists: services it depends
on, volumes, files it mounts or builds from, the modules it runs and the settings it sets."""

from __future__ import annotations

import importlib.util
import json

import jsonschema
import pytest
import yaml

from services.runtime.settings import Settings
from tests.deploy.k8s import ROOT, SCHEMAS

pytestmark = pytest.mark.k8s
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # `<<:` merges the anchors
SERVICES = ("ingestion", "moderation", "engagement", "campaign", "analytics")


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((SCHEMAS / "compose-spec" / "compose-spec.json").read_text())
    errors = jsonschema.Draft7Validator(schema).iter_errors(COMPOSE)
    assert [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors] == []


def test_everything_the_compose_file_names_exists() -> None:
    services, volumes = COMPOSE["services"], set(COMPOSE["volumes"])
    for name, service in services.items():
        assert set(service.get("depends_on", ())) <= set(services), name
        for mount in service.get("volumes", ()):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}"
            else:
                assert source in volumes, f"{name} mounts volume {source}"
        if "build" in service:
            context = DEPLOY / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).exists()
    fields = {f"SHEQUN_{f.upper()}" for f in Settings.model_fields}
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None
        assert set(service["environment"]) <= fields, f"{name}: a setting that does not exist"
        assert service["read_only"] is True and "healthcheck" in service
    ports = [p for s in services.values() for p in s.get("ports", ())]
    assert len(ports) == len(set(ports)) and all(p.startswith("127.0.0.1:") for p in ports)
