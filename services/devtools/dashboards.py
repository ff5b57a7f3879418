"""The Grafana dashboards, as code (grafana-foundation-sdk): `make dashboards` writes
deploy/grafana/dashboards/*.json, which compose's Grafana provisions, and
the same JSON as ConfigMaps for the Grafana sidecar, which `make manifests` puts in k8s/. Never
edit the output: `make lint` fails when it is not what this writes.

Every expression uses labels the services export with bounded values (consumers, topics, types,
outcomes, platforms: no group, member or tenant ids); tests/deploy/test_prometheus_live.py asks
each of them of a real Prometheus scraping the running stack."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef

from services.devtools.generated import ROOT, write_or_check

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
ALL = '{service=~"$service"}'
API = '{service=~"$service", route!~"/healthz|/readyz|/metrics"}'
RATE = "[$__rate_interval]"


def _panel(title: str, unit: str, *queries: tuple[str, str], width: int = 12) -> timeseries.Panel:
    """A time series of `queries` (expression, legend)."""
    panel = timeseries.Panel().title(title).unit(unit).datasource(PROMETHEUS).span(width)
    for expr, legend in queries:
        panel = panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend))
    return panel.height(8)


def _services() -> dashboard.QueryVariable:
    query = 'label_values(up{job="shequn"}, service)'
    return (
        dashboard.QueryVariable("service").label("Service").datasource(PROMETHEUS).query(query)
        .multi(True).include_all(True).all_value(".*")
    )  # fmt: skip


def _dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title).uid(uid).description(description).tags(["shequn"])
        .refresh("30s").time("now-1h", "now").timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR).with_variable(_services())
    )  # fmt: skip


def _rate(metric: str, by: str, selector: str = ALL, fn: str = "rate") -> str:
    return f"sum by ({by}) ({fn}({metric}{selector}{RATE}))"


def _quantile(q: float, histogram: str, by: str, selector: str = ALL) -> str:
    return f"histogram_quantile({q}, {_rate(f'{histogram}_bucket', f'{by}, le', selector)})"


def _per_minute(metric: str, by: str, legend: str, where: str = "") -> tuple[str, str]:
    selector = "{" + where + 'service=~"$service"}'
    return f"{_rate(metric, by, selector)} * 60", legend


def pipeline() -> dashboard.Dashboard:
    """Throughput, lag, latency, errors and dead letters, per service and consumer."""
    lag = f"sum by (consumer) (max by (consumer, topic, partition) (shequn_consumer_lag{ALL}))"
    batch = "shequn_batch_messages"
    mean_batch = f"{_rate(f'{batch}_sum', 'consumer')} / {_rate(f'{batch}_count', 'consumer')}"
    route = "{{service}} {{method}} {{route}}"
    handler, errors, retries = (
        "shequn_handler_seconds",
        "shequn_handler_errors_total",
        "shequn_handler_retries_total",
    )
    return (
        _dashboard("shequn-pipeline", "Shequn pipeline",
                   "Shequn: ingestion, Kafka consumers and HTTP APIs of the five services.")
        .with_row(dashboard.Row("Intake and throughput"))
        .with_panel(_panel("Services up", "none",
                           ('up{job="shequn", service=~"$service"}', "{{service}}")))
        .with_panel(_panel("Events ingested per second by type and status", "ops",
                           (_rate("shequn_events_ingested_total", "type, status"),
                            "{{type}} {{status}}")))
        .with_panel(_panel("Consumed messages per second by consumer", "ops",
                           (_rate("shequn_consumed_messages_total", "consumer"), "{{consumer}}")))
        .with_panel(_panel("Produced messages per second by topic", "ops",
                           (_rate("shequn_produced_messages_total", "topic"), "{{topic}}")))
        .with_row(dashboard.Row("Consumers"))
        .with_panel(_panel("Consumer lag by consumer", "none", (lag, "{{consumer}}")))
        .with_panel(_panel("Handler latency p50 / p99 by consumer", "s",
                           (_quantile(0.5, handler, "consumer"), "p50 {{consumer}}"),
                           (_quantile(0.99, handler, "consumer"), "p99 {{consumer}}")))
        .with_panel(_panel("Batch size by consumer", "none",
                           (mean_batch, "mean {{consumer}}"),
                           (_quantile(0.99, batch, "consumer"), "p99 {{consumer}}")))
        .with_panel(_panel("Handler errors and retries per second", "ops",
                           (_rate(errors, "consumer"), "errors {{consumer}}"),
                           (_rate(retries, "consumer"), "retries {{consumer}}")))
        .with_panel(_panel("Dead-lettered messages", "none",
                           (_rate("shequn_dead_lettered_total", "consumer, reason", fn="increase"),
                            "{{consumer}} {{reason}}")))
        .with_row(dashboard.Row("HTTP APIs"))
        .with_panel(_panel("HTTP requests per second by route", "reqps",
                           (_rate("shequn_http_requests_total", "service, method, route, status",
                                  API), f"{route} {{{{status}}}}")))
        .with_panel(_panel("HTTP p99 latency by route", "s",
                           (_quantile(0.99, "shequn_http_request_seconds", "service, method, route",
                                      API), route)))
    )  # fmt: skip


def business() -> dashboard.Dashboard:
    """What the groups do and what the operators' tools did, per minute, by bounded labels
    (joins are among the events by type)."""
    return (
        _dashboard("shequn-business", "Shequn business",
                   "Shequn: events by type, moderation, engagement, campaign and deliveries.")
        .with_row(dashboard.Row("Groups"))
        .with_panel(_panel("Events accepted per minute by type", "none",
                           _per_minute("shequn_events_ingested_total", "type", "{{type}}",
                                       'status="accepted", ')))
        .with_panel(_panel("Moderation decisions per minute by rule and penalty", "none",
                           _per_minute("shequn_moderation_decisions_total", "rule, penalty",
                                       "{{rule}} {{penalty}}")))
        .with_row(dashboard.Row("Engagement"))
        .with_panel(_panel("Welcomes, auto-replies and check-ins per minute", "none",
                           _per_minute("shequn_welcomes_total", "kind", "welcome {{kind}}"),
                           _per_minute("shequn_autoreplies_total", "kind", "auto-reply {{kind}}"),
                           _per_minute("shequn_checkins_total", "outcome", "check-in {{outcome}}")))
        .with_panel(_panel("Points booked per minute by source", "none",
                           _per_minute("shequn_points_booked_total", "source", "{{source}}")))
        .with_panel(_panel("Lottery draws per minute by outcome", "none",
                           _per_minute("shequn_lottery_draws_total", "outcome", "{{outcome}}")))
        .with_row(dashboard.Row("Campaign"))
        .with_panel(_panel("Live-code scans per minute by outcome", "none",
                           _per_minute("shequn_livecode_scans_total", "outcome", "{{outcome}}")))
        .with_panel(_panel("Broadcast and SOP deliveries per minute", "none",
                           _per_minute("shequn_broadcast_deliveries_total", "outcome",
                                       "broadcast {{outcome}}"),
                           _per_minute("shequn_sop_slots_total", "fate", "SOP slot {{fate}}")))
        .with_panel(_panel("Coupons issued per minute by occasion", "none",
                           _per_minute("shequn_coupons_issued_total", "occasion", "{{occasion}}")))
        .with_row(dashboard.Row("Deliveries"))
        .with_panel(_panel("Actions finished per minute by platform and outcome", "none",
                           _per_minute("shequn_actions_finished_total", "platform, status",
                                       "{{platform}} {{status}}")))
    )  # fmt: skip


DASHBOARDS = {"pipeline": pipeline, "business": business}


def _json(name: str) -> str:
    return (
        JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(DASHBOARDS[name]().build())
        + "\n"
    )


def rendered() -> dict[Path, str]:
    """Every file this writes, by path, with its text."""
    return {
        ROOT / "deploy" / "grafana" / "dashboards" / f"{name}.json": _json(name)
        for name in DASHBOARDS
    }


def configmaps() -> list[dict[str, Any]]:
    """The same dashboards as ConfigMaps that Grafana's dashboard sidecar loads (the label),
    for k8s/ (services/devtools/manifests)."""
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": f"shequn-dashboard-{name}",
                      "labels": {"grafana_dashboard": "1", "app.kubernetes.io/part-of": "shequn"}},
         "data": {f"shequn-{name}.json": _json(name)}}
        for name in DASHBOARDS
    ]  # fmt: skip


def main(argv: list[str]) -> int:
    return write_or_check(rendered(), argv, "make dashboards")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
