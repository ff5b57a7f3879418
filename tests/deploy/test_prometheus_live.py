"""A real Prometheus (Debian's `prometheus`) scrapes the running stack while it gets traffic,
with deploy/prometheus/alerts.yml loaded; then every PromQL expression of every dashboard panel
is asked of it (each parses and returns data), every alert rule evaluates without error, and
every metric an alert reads is there."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.devtools.stack import free_port
from tests.clients import joined, message, post_events
from tests.conftest import ROOT, Stack, Tenant
from tests.kafka import produce
from tests.waiting import eventually

PROMETHEUS = shutil.which("prometheus")
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus, as root)"
)


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping the stack's five services every second, as the deploy/ one does
    (job "shequn", a `service` label each), with the alert rules; its API's URL."""
    targets = [
        {"targets": [stack.http(s).removeprefix("http://")], "labels": {"service": s}}
        for s in stack.info["services"]
    ]
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{"job_name": "shequn", "static_configs": targets}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    assert PROMETHEUS is not None
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        # It answers 503 "Service Unavailable" until its storage is open: wait for /-/ready.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"prometheus never got ready; see {tmp_path / 'prometheus.log'}")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _panel_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
    return found


def _as_grafana_would(expr: str) -> str:
    """The expression with the dashboard's variables as Grafana fills them (every service)."""
    return expr.replace("$__rate_interval", "30s").replace("$service", ".*")


async def _query(http: httpx.AsyncClient, prometheus: str, expr: str) -> list[Any]:
    answer = (await http.get(f"{prometheus}/api/v1/query", params={"query": expr})).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[Any] = answer["data"]["result"]
    return result


async def _traffic(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    await post_events(http, stack, tenant, [
        joined(group, "u-1"), message(group, "u-1", "签到"), message(group, "u-2", "大家好"),
        message(group, "u-3", "加 微 信 领福利 vx: shop_8888"),
    ])  # fmt: skip
    key = f"{tenant.id}:{group}".encode()
    await produce(stack.kafka, [("shequn.events.v1", key, b"\xffnot an event")])


async def test_every_panel_and_alert_expression_answers_from_a_real_prometheus(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, prometheus: str
) -> None:
    async def scraped() -> list[Any]:
        try:
            return await _query(http, prometheus, 'up{job="shequn"} == 1')
        except httpx.HTTPError:
            return []

    await eventually(scraped, lambda up: len(up) == len(stack.info["services"]), within=60)
    for _ in range(3):  # rates need samples before and after the traffic
        await _traffic(http, stack, tenant)
        await asyncio.sleep(3)

    expressions = _panel_expressions()
    assert expressions, "no dashboard panels found"
    empty = []
    for where, expr in expressions:
        if not await _query(http, prometheus, _as_grafana_would(expr)):
            empty.append(f"{where}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)

    rules = (await http.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
    loaded = {r["name"]: r for g in rules for r in g["rules"]}
    written = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert set(loaded) == {r["alert"] for r in written}
    await eventually(
        lambda: _rule_health(http, prometheus), lambda h: set(h.values()) == {"ok"}, within=30
    )
    missing = [
        (r["alert"], name)
        for r in written
        for name in sorted(set(re.findall(r"\b(shequn_[a-z_]+|up)\b", r["expr"])))
        if not await _query(http, prometheus, f'count({{__name__="{name}"}})')
    ]
    assert not missing, f"alerts reading metrics that are not there: {missing}"


async def _rule_health(http: httpx.AsyncClient, prometheus: str) -> dict[str, str]:
    rules = (await http.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
    return {
        r["name"]: f"{r['health']} {r.get('lastError', '')}".strip()
        for g in rules
        for r in g["rules"]
    }
