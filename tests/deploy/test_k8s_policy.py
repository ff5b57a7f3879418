"""What a platform team checks in the rendered manifests: least privilege (Kafka ACLs, MongoDB
roles, NetworkPolicies, the public routes), hardened pods, a rollout that loses nothing, and
nothing secret committed. The flows are checked against the code: the topology the runtime
enforces and the routes the services serve."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest
import yaml
from fastapi import APIRouter
from fastapi.routing import APIRoute

import services
from services.devtools.manifests.workloads import GRACE_SECONDS, PRE_STOP_SECONDS, WORKLOADS
from services.runtime.settings import Settings
from services.runtime.topology import SERVICES, topic, writable
from tests.deploy.k8s import OVERLAYS, ROOT, Object, of_kind, rendered, tools

pytestmark = pytest.mark.k8s
SETTINGS = Settings()
NAMES = [w.name for w in WORKLOADS]


def _pod(deployment: Object) -> Object:
    pod: Object = deployment["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_hardened_probed_and_budgeted(overlay: str) -> None:
    objects = rendered(overlay)
    deployments = of_kind(objects, "Deployment")
    assert sorted(deployments) == sorted(NAMES) == sorted(SERVICES)
    budgets, accounts = of_kind(objects, "PodDisruptionBudget"), of_kind(objects, "ServiceAccount")
    for name, deployment in deployments.items():
        pod = _pod(deployment)
        [container] = pod["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        probes = ("startupProbe", "readinessProbe", "livenessProbe")
        paths = [container[probe]["httpGet"]["path"] for probe in probes]
        assert paths == ["/healthz", "/readyz", "/healthz"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False, "privileged": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
        }  # fmt: skip
        assert pod["automountServiceAccountToken"] is False
        assert accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items() and budgets[name]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_rollout_waits_for_the_batch_in_hand(overlay: str) -> None:
    for deployment in of_kind(rendered(overlay), "Deployment").values():
        pod = _pod(deployment)
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        shutdown = float(env["SHEQUN_SHUTDOWN_SECONDS"])
        # preStop, then the consumers' bounded shutdown, then closing: all before SIGKILL.
        assert (
            pod["terminationGracePeriodSeconds"] == GRACE_SECONDS >= PRE_STOP_SECONDS + shutdown + 5
        )
        assert deployment["spec"]["strategy"]["rollingUpdate"] == {
            "maxSurge": 1,
            "maxUnavailable": 0,
        }


def test_production_autoscales_and_spreads_and_development_is_small() -> None:
    prod, dev = rendered("prod"), rendered("dev")
    autoscalers = of_kind(prod, "HorizontalPodAutoscaler")
    for w in WORKLOADS:
        deployment = of_kind(prod, "Deployment")[w.name]
        assert "replicas" not in deployment["spec"]  # the autoscaler's to set
        hpa = autoscalers[w.name]["spec"]
        assert hpa["scaleTargetRef"]["name"] == w.name and hpa["minReplicas"] >= 2
        assert hpa["maxReplicas"] <= SETTINGS.kafka_partitions  # more would idle as consumers
        assert "podAntiAffinity" in _pod(deployment)["affinity"]
        assert of_kind(dev, "Deployment")[w.name]["spec"]["replicas"] == 1
    assert of_kind(dev, "HorizontalPodAutoscaler") == {}
    assert of_kind(dev, "KafkaNodePool")["dual-role"]["spec"]["replicas"] == 1
    assert of_kind(prod, "KafkaNodePool")["dual-role"]["spec"]["replicas"] == 3
    assert of_kind(prod, "MongoDBCommunity")["shequn-mongodb"]["spec"]["members"] == 3


def _grants(user: Object) -> set[tuple[str, str, str]]:
    return {
        (acl["resource"]["type"], acl["resource"]["name"], op)
        for acl in user["spec"]["authorization"]["acls"]
        for op in acl["operations"]
    }


def test_each_kafka_user_may_use_exactly_the_topics_and_groups_of_its_service() -> None:
    objects = rendered("prod")
    users, topics = of_kind(objects, "KafkaUser"), of_kind(objects, "KafkaTopic")
    assert sorted(users) == sorted(f"shequn-{s}" for s in SERVICES)
    for service, flows in SERVICES.items():
        user = users[f"shequn-{service}"]
        assert user["spec"]["authentication"] == {"type": "tls"}
        read = {topic(SETTINGS, t) for ts in flows.consumers.values() for t in ts}
        expected = (
            {("topic", t, "Read") for t in read}
            | {("topic", t, "Write") for t in writable(service, SETTINGS)}
            | {("topic", t, "Describe") for t in read | writable(service, SETTINGS)}
            | {("group", SETTINGS.consumer_group(c), "Read") for c in flows.consumers}
        )
        assert _grants(user) == expected
        # Every topic it may use exists as a KafkaTopic.
        names = {t["spec"]["topicName"] for t in topics.values()}
        assert {name for kind, name, _ in expected if kind == "topic"} <= names
    kafka = of_kind(objects, "Kafka")["shequn"]["spec"]["kafka"]
    assert kafka["authorization"] == {"type": "simple"}
    assert [(x["tls"], x["authentication"]) for x in kafka["listeners"]] == [
        (True, {"type": "tls"})
    ]


def test_each_service_reads_and_writes_its_own_database_only() -> None:
    [mongodb] = of_kind(rendered("prod"), "MongoDBCommunity").values()
    users = {u["name"]: u for u in mongodb["spec"]["users"]}
    for service in SERVICES:
        assert {(r["name"], r["db"]) for r in users[service]["roles"]} == {
            ("readWrite", f"shequn_{service}"), ("read", "shequn_identity"),
        }  # fmt: skip
    assert [(r["name"], r["db"]) for r in users["keys"]["roles"]] == [
        ("readWrite", "shequn_identity")
    ]
    assert sorted(users) == sorted([*SERVICES, "keys"])


def _mounted_secrets(pod: Object) -> set[str]:
    return {
        source["secret"]["name"]
        for volume in pod["volumes"]
        for source in volume.get("projected", {}).get("sources", [])
        if "secret" in source
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_committed_and_the_readme_says_how_to_make_each(overlay: str) -> None:
    objects = rendered(overlay) + tools()
    assert of_kind(objects, "Secret") == {}
    referenced = set().union(
        *(_mounted_secrets(_pod(d)) for d in of_kind(objects, "Deployment").values())
    )
    referenced |= _mounted_secrets(of_kind(objects, "Pod")["keys"]["spec"])
    [mongodb] = of_kind(objects, "MongoDBCommunity").values()
    users = mongodb["spec"]["users"]
    made_by_operators = (
        {"shequn-cluster-ca-cert"}
        | {f"shequn-{s}" for s in SERVICES}  # each KafkaUser's certificate
        | {u["connectionStringSecretName"] for u in users}
    )
    assert referenced - made_by_operators == {"shequn-secrets-key"}
    # The README creates the rest: the key of the credentials and every database password.
    readme = (ROOT / "README.md").read_text()
    assert "kubectl -n shequn create secret generic shequn-secrets-key" in readme
    assert {u["passwordSecretRef"]["name"] for u in users} == {
        f"shequn-mongodb-{u['name']}-password" for u in users
    }
    assert f"for user in {' '.join(u['name'] for u in users)}; do" in readme
    assert 'create secret generic "shequn-mongodb-$user-password"' in readme


def test_the_settings_are_real_and_make_a_valid_production_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    objects = rendered("prod")
    config = of_kind(objects, "ConfigMap")["shequn-config"]["data"]
    fields = {f"SHEQUN_{name.upper()}" for name in Settings.model_fields}
    # What the Secrets hold, as the pod reads them from SHEQUN_SECRETS_DIR.
    (tmp_path / "SHEQUN_MONGO_URL").write_text("mongodb://u:Xq3v9sLw@shequn-mongodb-svc:27017/")
    for deployment in of_kind(objects, "Deployment").values():
        env = {e["name"]: e["value"] for e in _pod(deployment)["containers"][0]["env"]} | config
        # A misspelt variable would be ignored silently.
        assert set(env) - {"SHEQUN_SECRETS_DIR"} <= fields
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings(_secrets_dir=tmp_path)
        assert settings.env == "production" and settings.kafka_security_protocol == "SSL"
        assert settings.kafka_create_topics is False and settings.trusted_proxies == ["10.0.0.0/8"]
        for name in env:
            monkeypatch.delenv(name)
    # The key administration pod's settings are valid too: the `shequn` command starts there.
    [keys] = of_kind(tools(), "Pod")["keys"]["spec"]["containers"]
    assert keys["envFrom"] == [{"configMapRef": {"name": "shequn-config"}}]
    for name, value in ({e["name"]: e["value"] for e in keys["env"]} | config).items():
        monkeypatch.setenv(name, value)
    assert Settings(_secrets_dir=tmp_path).env == "production"


def _network_policy_for(objects: tuple[Object, ...], labels: dict[str, str]) -> list[Object]:
    return [
        p for p in of_kind(objects, "NetworkPolicy").values()
        if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]  # fmt: skip


def test_network_policies_allow_only_the_flows_of_the_architecture() -> None:
    objects = rendered("prod")
    for w in WORKLOADS:
        labels = of_kind(objects, "Deployment")[w.name]["spec"]["template"]["metadata"]["labels"]
        [policy] = _network_policy_for(objects, labels)
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        sources = {
            next(iter(peer["namespaceSelector"]["matchLabels"])): [p["port"] for p in rule["ports"]]
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
        }
        expected = {"shequn.io/monitoring": [8080], "shequn.io/api-clients": [8080, 50051]}
        if w.name in ("ingestion", "campaign"):
            expected["shequn.io/gateway"] = [8080]
        assert sources == expected
        ports = sorted({p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]})
        assert ports == (
            [53, 80, 443, 9093, 27017]
            if w.name in ("ingestion", "moderation")
            else [53, 9093, 27017]
        )
        # Strimzi's listener policy and the database's admit the service's pods.
        [peer] = of_kind(objects, "Kafka")["shequn"]["spec"]["kafka"]["listeners"][0][
            "networkPolicyPeers"
        ]
        assert peer["podSelector"]["matchLabels"].items() <= labels.items()
        [mongodb] = _network_policy_for(objects, {"app": "shequn-mongodb-svc"})
        peers = mongodb["spec"]["ingress"][0]["from"]
        assert any(p["podSelector"]["matchLabels"].items() <= labels.items() for p in peers)


def _routes() -> set[tuple[str, str]]:
    """Every (method, path) any service serves."""
    found = set()
    for module in pkgutil.walk_packages(services.__path__, "services."):
        if module.name.startswith(("services.gen", "services.devtools")):
            continue
        router = getattr(importlib.import_module(module.name), "router", None)
        if isinstance(router, APIRouter):
            routes = [r for r in router.routes if isinstance(r, APIRoute)]
            found |= {(m, r.path) for r in routes for m in r.methods or ()}
    return found


def test_the_gateway_routes_the_public_routes_and_nothing_else() -> None:
    [route] = of_kind(rendered("prod"), "HTTPRoute").values()

    def backend(method: str, path: str) -> str | None:
        sample = re.sub(r"\{[^}]+\}", "x1", path)
        for rule in route["spec"]["rules"]:
            for match in rule["matches"]:
                kind, value = match["path"]["type"], match["path"]["value"]
                hit = (
                    sample.startswith(value)
                    if kind == "PathPrefix"
                    else re.fullmatch(value, sample)
                )
                if hit and match.get("method", method) == method:
                    return str(rule["backendRefs"][0]["name"])
        return None

    routes = _routes()
    assert len(routes) > 50
    public = {(m, p, b) for m, p in routes if (b := backend(m, p))}
    webhooks = {(m, p, "ingestion") for m, p in routes if p.startswith("/v1/webhooks/")}
    assert public == webhooks | {("POST", "/v1/livecodes/{code}/scan", "campaign")}
    assert len(webhooks) >= 4


def test_the_service_monitor_scrapes_every_service() -> None:
    objects = rendered("prod")
    [monitor] = of_kind(objects, "ServiceMonitor").values()
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    scraped = [
        s for s in of_kind(objects, "Service").values() if wanted <= s["metadata"]["labels"].items()
    ]
    assert sorted(s["metadata"]["name"] for s in scraped) == sorted(NAMES)
    for s in scraped:
        ports = {p["name"]: p for p in s["spec"]["ports"]}
        assert ports["grpc"]["appProtocol"] == "grpc" and "http" in ports
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


def test_the_alert_rules_and_dashboards_are_the_same_as_for_compose() -> None:
    objects = rendered("prod")
    [rule] = of_kind(objects, "PrometheusRule").values()
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
    for name in ("pipeline", "business"):
        configmap = of_kind(objects, "ConfigMap")[f"shequn-dashboard-{name}"]
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        shipped = (ROOT / "deploy" / "grafana" / "dashboards" / f"{name}.json").read_text()
        assert json.loads(configmap["data"][f"shequn-{name}.json"]) == json.loads(shipped)
