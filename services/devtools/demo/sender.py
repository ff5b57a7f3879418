"""Talking to the running dev stack through its public HTTP APIs: the dev file, the sender with
its retries, progress and tallies."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.devtools.demo.cast import BATCH, CONCURRENCY, WHITELIST, Body


class DemoError(Exception):
    """Something the demo cannot go on after; the message says what."""


class Progress:
    """A one-line progress bar on stderr, redrawn with '\\r': done/total, rate and ETA."""

    def __init__(self, total: int, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.out, self.width = total, out, width
        self.done, self.started = 0, time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else 0.0
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {self.done:,}/{self.total:,} events  {rate:,.0f}/s  ETA {eta:.0f}s"
        self.out.write(f"\r{line}   ")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


@dataclass
class Tally:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    accepted_messages: Counter[str] = field(default_factory=Counter)  # by group


@dataclass(frozen=True)
class DevStack:
    """What the demo needs of a dev file (API.md)."""

    api_key: str
    ingestion: str
    analytics: str
    moderation: str
    engagement: str
    campaign: str
    docs: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> DevStack:
        try:
            info = json.loads(path.read_text())
            services = info["services"]
            return cls(
                api_key=info["api_key"],
                ingestion=services["ingestion"]["http"],
                analytics=services["analytics"]["http"],
                moderation=services["moderation"]["http"],
                engagement=services["engagement"]["http"],
                campaign=services["campaign"]["http"],
                docs={name: ends["http"] + "/docs" for name, ends in services.items()},
            )
        except FileNotFoundError:
            raise DemoError(f"no dev file at {path}: start the stack with `make dev`") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise DemoError(f"{path} is not a dev file: {exc!r}") from None


class Sender:
    """Posts events, actions and dedupe requests with the dev key, resending on 429 (after
    Retry-After) and on transient failures; any other answer than the one expected is an
    error."""

    def __init__(self, http: httpx.AsyncClient, stack: DevStack, attempts: int = 5) -> None:
        self.http, self.stack, self.attempts = http, stack, attempts
        self.headers = {"Authorization": f"Bearer {stack.api_key}"}

    async def post(self, url: str, body: Body, expected: int = 202) -> Body:
        failures = 0
        while True:
            try:
                response = await self.http.post(url, json=body, headers=self.headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == expected:
                    answer: Body = response.json()
                    return answer
                if response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                problem = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code < 500:
                    raise DemoError(f"POST {url} → {problem}")
            failures += 1
            if failures >= self.attempts:
                raise DemoError(f"POST {url} failed {failures} times; last: {problem}")
            await asyncio.sleep(0.5 * 2**failures)

    async def send_batch(self, batch: list[Body], tally: Tally) -> None:
        answer = await self.post(self.stack.ingestion + "/v1/events", {"events": batch})
        results = answer["results"]
        rejected = [r for r in results if r["status"] == "rejected"]
        if rejected or len(results) != len(batch):
            shown = "\n".join(f"  {r['event_id']}: {r['error']}" for r in rejected[:5])
            raise DemoError(
                f"ingestion rejected {len(rejected)} demo events (a demo bug):\n{shown}"
            )
        for item, result in zip(batch, results, strict=True):
            if result["status"] == "accepted":
                tally.accepted += 1
                if item["type"] == "message_posted":
                    tally.accepted_messages[item["group_id"]] += 1
            else:
                tally.duplicates += 1
        tally.sent += len(batch)

    async def send_events(
        self, events: list[Body], progress: Progress, concurrency: int = CONCURRENCY
    ) -> Tally:
        tally = Tally()
        batches = iter([events[i : i + BATCH] for i in range(0, len(events), BATCH)])

        async def worker() -> None:
            for batch in batches:  # shared: each worker takes the next batch
                await self.send_batch(batch, tally)
                progress.advance(len(batch))

        try:
            async with asyncio.TaskGroup() as tasks:
                for _ in range(concurrency):
                    tasks.create_task(worker())
        except* DemoError as failed:
            raise failed.exceptions[0] from None
        return tally

    async def set_rules(self, strict_group: str) -> None:
        """What an operator does first: the shop's own domains are not ads; and one group
        where only admins may invite or rename (拉人者踢, 禁止改群名)."""
        url = f"{self.stack.moderation}/v1/rulesets/default"
        current = await self.get(url, {})
        current["url_whitelist"] = sorted(set(current["url_whitelist"]) | set(WHITELIST))
        strict = {"invite_policy": True, "rename_lock": True}
        await self.put(url, current)
        await self.put(f"{self.stack.moderation}/v1/rulesets/groups/{strict_group}", strict)

    async def put(self, url: str, body: Body) -> Body:
        response = await self.http.put(url, json=body, headers=self.headers)
        if response.status_code != 200:
            raise DemoError(f"PUT {url} → HTTP {response.status_code}: {response.text[:300]}")
        answer: Body = response.json()
        return answer

    async def send_action(self, action: Body) -> None:
        await self.post(self.stack.ingestion + "/v1/actions", action)

    async def until(
        self, url: str, done: Callable[[Any], bool], within: float = 30.0, every: float = 0.5
    ) -> Any:
        """GET `url` until `done` says the answer is what the step waits for, or `within`
        seconds have gone (then the last answer, for the report to say what it was)."""
        started = time.monotonic()
        while True:
            found = await self.get(url)
            if done(found) or time.monotonic() - started > within:
                return found
            await asyncio.sleep(every)

    async def get(self, url: str, params: dict[str, Any] | None = None) -> Body:
        response = await self.http.get(url, params=params, headers=self.headers)
        response.raise_for_status()
        answer: Body = response.json()
        return answer

    async def messages_counted(self, group_id: str, start: date, end: date) -> int:
        url = f"{self.stack.analytics}/v1/stats/groups/{group_id}/daily"
        days = await self.get(url, {"from": start.isoformat(), "to": end.isoformat()})
        return sum(int(day["messages"]) for day in days["days"])

    async def tenant_days(self, start: date, end: date) -> list[dict[str, Any]]:
        url = f"{self.stack.analytics}/v1/stats/daily"
        days = await self.get(url, {"from": start.isoformat(), "to": end.isoformat()})
        rows: list[dict[str, Any]] = days["days"]
        return rows

    async def reports(self, start: date, end: date) -> dict[str, Any]:
        """The tenant's reports over the days: funnel, retention, live codes, talkers, and the
        dead groups of the last day."""
        base, window = f"{self.stack.analytics}/v1/stats", {"from": start.isoformat(),
                                                             "to": end.isoformat()}  # fmt: skip
        found = {}
        for name, path, params in (
            ("funnel", "funnel", window),
            ("retention", "retention", window),
            ("livecodes", "livecodes", window),
            ("talkers", "leaderboards/talkers", window | {"limit": 3}),
            ("dead", "dead-groups", {"on": end.isoformat()}),
        ):
            found[name] = (await self.get(f"{base}/{path}", params))["rows"]
        return found

    async def timeline(self, group_id: str) -> list[dict[str, Any]]:
        url = f"{self.stack.ingestion}/v1/groups/{group_id}/timeline"
        items: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"limit": 500} | ({"after": after} if after else {})
            page = await self.get(url, params)
            items += page["items"]
            after = page["next"]
            if not after:
                return items

    async def timeline_events(self, group_id: str) -> int:
        return sum(1 for item in await self.timeline(group_id) if item["kind"] == "event")

    async def decisions(self) -> list[dict[str, Any]]:
        page = await self.get(f"{self.stack.moderation}/v1/moderation/decisions", {"limit": 500})
        found: list[dict[str, Any]] = page["decisions"]
        return found

    async def backlog(self, service: str) -> float | None:
        """Messages the service's consumers have yet to handle, by their lag gauges on
        /metrics (None before any reports)."""
        response = await self.http.get(service + "/metrics")
        response.raise_for_status()
        lags = [
            sample.value
            for family in text_string_to_metric_families(response.text)
            if family.name == "shequn_consumer_lag"
            for sample in family.samples
        ]
        return sum(lags) if lags else None

    async def plan_dedupe(self, series: str) -> Body:
        url = f"{self.stack.moderation}/v1/dedupe/plans"
        return await self.post(url, {"series": series}, expected=201)

    async def apply_dedupe(self, plan_id: str) -> Body:
        url = f"{self.stack.moderation}/v1/dedupe/plans/{plan_id}/apply"
        return await self.post(url, {}, expected=200)
