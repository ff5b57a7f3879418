"""The Prometheus Operator's objects: a ServiceMonitor for the services, and a PrometheusRule
made from deploy/prometheus/alerts.yml, the rules compose's Prometheus loads and promtool
tests: one source for both."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.devtools.manifests.workloads import PART_OF, Object

ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"


def service_monitor() -> Object:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "shequn", "labels": PART_OF},
        "spec": {
            # job="shequn" and the `service` label (the Service's name), as compose's
            # Prometheus has them: the rules and dashboards work unchanged.
            "jobLabel": "app.kubernetes.io/part-of",
            "selector": {"matchLabels": {**PART_OF, "app.kubernetes.io/component": "microservice"}},
            "endpoints": [
                {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
            ],
        },
    }


def prometheus_rule() -> Object:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "shequn", "labels": PART_OF},
        "spec": {"groups": groups},
    }
