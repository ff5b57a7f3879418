"""`make dev`: the dev file appears, all five services are ready, and SIGTERM leaves nothing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from services.devtools.stack import PROJECTION_NICENESS, PROJECTIONS, SERVICES, TIMELINE
from tests.conftest import stack_processes, start_dev_stack, stop_dev_stack


def _processes_of(state_dir: Path) -> list[int]:
    return list(stack_processes(state_dir))


def _scheduling(state_dir: Path) -> tuple[dict[str, int], set[int]]:
    """Each service's and database server's niceness (the broker's as `kafka`), and the
    sessions the stack's processes are in."""
    niceness: dict[str, int] = {}
    sessions: set[int] = set()
    for pid, cmd in stack_processes(state_dir).items():
        # After the command name: state, ppid, pgrp, session, … and niceness, the 17th.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        args = cmd.split()
        if "--data-dir" in args:
            part = "db-" + Path(args[args.index("--data-dir") + 1]).name
        elif args[-1].startswith("services."):
            part = args[-1].removeprefix("services.")
        else:
            part = "kafka"
        niceness[part] = int(fields[16])
        sessions.add(int(fields[3]))
    return niceness, sessions


def test_make_dev_starts_everything_and_sigterm_stops_everything(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    env = {"SHEQUN_DEV_DIR": str(state_dir), "SHEQUN_KAFKA_BOOTSTRAP": "", "SHEQUN_MONGO_URL": ""}
    process, info = start_dev_stack(state_dir, env, argv=["make", "--no-print-directory", "dev"])
    try:
        assert set(info) == {"tenant_id", "api_key", "kafka_bootstrap", "mongo_url", "services"}
        assert info["tenant_id"] == "dev"
        assert info["api_key"].startswith("sq_")
        assert info["kafka_bootstrap"].startswith("127.0.0.1:")
        assert info["mongo_url"].startswith("mongodb://127.0.0.1:")
        assert set(info["services"]) == set(SERVICES)
        ends = info["services"]
        assert set(ends["ingestion"]) == {"http", "grpc", "mongo_url", "timeline_mongo_url"}
        assert all(set(ends[s]) == {"http", "grpc", "mongo_url"} for s in SERVICES[1:])
        servers = {e["mongo_url"] for e in ends.values()} | {
            ends["ingestion"]["timeline_mongo_url"]
        }
        assert len(servers) == len(SERVICES) + 1, "a server for each database and the timeline"
        assert info["mongo_url"] == info["services"]["ingestion"]["mongo_url"]
        assert (state_dir / "dev.json").stat().st_mode & 0o077 == 0, "the dev file holds a key"
        for service in SERVICES:
            response = httpx.get(info["services"][service]["http"] + "/readyz", timeout=5)
            assert response.status_code == 200, (service, response.text)
        assert len(_processes_of(state_dir)) >= 12  # broker, six databases, five services
        # The projections yield the CPU to the front door and the reaction path, which the
        # kernel weighs only among the processes of one session.
        niceness, sessions = _scheduling(state_dir)
        yielding = {*PROJECTIONS, *(f"db-{p}" for p in PROJECTIONS)} - {TIMELINE}
        assert niceness == {
            part: PROJECTION_NICENESS if part in yielding else 0
            for part in ("kafka", *SERVICES, "db-timeline", *(f"db-{s}" for s in SERVICES))
        }
        assert len(sessions) == 1
    finally:
        stop_dev_stack(process)
    # make exits at once on SIGTERM; the stack it started stops its children in order.
    deadline = time.monotonic() + 60
    while _processes_of(state_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_of(state_dir) == []
    assert not (state_dir / "dev.json").exists()
