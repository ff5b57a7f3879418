"""The alert rules and the scrape configuration, checked by a real Prometheus's own tool:
`promtool check` parses them, `promtool test rules` runs alerts.test.yml (each alert fires on
the series that should raise it and stays quiet on the others), and Kubernetes gets the same
rules. Debian's `prometheus` package provides promtool (`make test` installs it as root)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus, as root)"
)


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@needs_promtool
def test_the_rules_parse_and_are_all_there() -> None:
    out = _promtool("check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(_rules(PROMETHEUS / 'alerts.yml'))} rules found" in out


@needs_promtool
def test_the_scrape_configuration_is_valid_with_its_rules() -> None:
    out = _promtool("check", "config", "prometheus.yml")
    assert "is valid prometheus config file syntax" in out


@needs_promtool
def test_every_alert_has_unit_tests_that_pass() -> None:
    _promtool("test", "rules", "alerts.test.yml")
    tested = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {
        t["alertname"] for case in tested for t in case["alert_rule_test"] if t.get("exp_alerts")
    }
    assert fired == {r["alert"] for r in _rules(PROMETHEUS / "alerts.yml")}


def _rules(path: Path) -> list[dict[str, object]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]
