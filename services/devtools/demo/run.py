"""The run: send the scenario, wait for the pipeline, dedupe the 福利 series, gather what the
system did, and print the report."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TextIO

import httpx

from services.devtools.demo import convert, engage
from services.devtools.demo.cast import TZ, WAIT_SECONDS, Scenario
from services.devtools.demo.report import Dedupe, Outcomes, stats_window, summary
from services.devtools.demo.scenario import build_scenario
from services.devtools.demo.sender import DemoError, DevStack, Progress, Sender, Tally


async def wait_until_quiet(sender: Sender, within: float = WAIT_SECONDS) -> None:
    """Poll until ingestion has delivered every action and moderation has judged every event,
    the member_left of each kick included, so that a dedupe plan sees the memberships that the
    week and moderation's kicks left. Each lag gauge is refreshed once a second: quiet counts
    when seen twice, more than a second apart. After `within`, go on with what there is."""
    started, quiet = time.monotonic(), 0
    # Ingestion first: a kick's member_left is on its way to moderation once delivery is done.
    services = (sender.stack.ingestion, sender.stack.moderation)
    while time.monotonic() - started < within:
        try:
            lags = [await sender.backlog(service) for service in services]
        except httpx.HTTPError:  # a service restarting: poll again
            lags = [None]
        quiet = quiet + 1 if all(lag == 0 for lag in lags) else 0
        if quiet == 2:
            return
        await asyncio.sleep(1.2)


def _day_and_time(at: str) -> str:
    return f"{datetime.fromisoformat(at).astimezone(TZ):%m-%d %H:%M}"


async def dedupe(sender: Sender, series: str, out: TextIO) -> Dedupe:
    """What an operator does after the week: a dry run of member dedupe over the series, read,
    then applied, unless it removes nobody (as on a second run of a seed)."""
    await wait_until_quiet(sender)
    plan = await sender.plan_dedupe(series)
    counts = plan["counts"]
    names = {g["group_id"]: g["name"] for g in plan["groups"]}
    lines = [
        f"Member dedupe (群成员去重) of series {series}, {counts['groups']} groups:",
        f"  dry run   {counts['members']} members in several of them: {counts['removals']} "
        f"removals planned, {counts['skipped']} memberships of owners and admins skipped",
    ]
    busiest = max(plan["members"], key=lambda m: len(m["removals"]), default=None)
    if busiest and busiest["removals"]:
        kept = busiest["kept"]
        removed = ", ".join(names[g] for g in busiest["removals"])
        lines.append(
            f"  e.g.      {busiest['member_id']} stays in {names[kept['group_id']]} (joined "
            f"{_day_and_time(kept['joined_at'])}), leaves {removed}"
        )
    applied = None
    if counts["removals"]:
        applied = await sender.apply_dedupe(plan["plan_id"])
        outcome = applied["outcome"]
        why = Counter(skip["reason"] for skip in outcome["skipped"])
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(why.items()))
        lines.append(
            f"  applied   {len(outcome['kicks'])} kicks sent, "
            f"{len(outcome['skipped'])} skipped{f' ({skipped})' if skipped else ''}"
        )
    else:
        lines.append("  nothing to apply")
    print("\n".join(lines) + "\n", file=out)
    return Dedupe(plan, applied)


async def wait_for_outcomes(
    sender: Sender, scenario: Scenario, deduped: Dedupe, within: float = 30.0
) -> Outcomes:
    """Poll until the first focus group's timeline holds the dedupe kicks made there and every
    action in it has a final status, then count moderation's decisions and the focus groups'
    deliveries."""
    started = time.monotonic()
    group = scenario.focus[0].id
    kicks = {kick["action_id"] for kick in deduped.kicks}
    while True:
        items = await sender.timeline(group)
        statuses = {i["action_id"]: i.get("status") for i in items if i["kind"] == "action"}
        unseen = {k["action_id"] for k in deduped.kicks if k["group_id"] == group} - set(statuses)
        if not ("pending" in statuses.values() or unseen) or time.monotonic() - started > within:
            break
        await asyncio.sleep(1.0)
    outcomes = Outcomes(deduped)
    for decision in await sender.decisions():
        outcomes.decisions[(decision["rule"], decision["penalty"])] += 1
        outcomes.qr_code_ads += decision["check"] == "qr_code"
    for focus in scenario.focus:
        # The first focus group's timeline was just read: reading one costs seconds.
        for item in items if focus.id == group else await sender.timeline(focus.id):
            if item["kind"] == "action":
                status = item.get("status", "pending")
                outcomes.deliveries[status] += 1
                if item["action_id"] in kicks:
                    outcomes.dedupe_deliveries[status] += 1
                action_id = item["action_id"]
                if action_id.endswith(":checkin"):
                    first = "签到成功" in str(item.get("text"))
                    outcomes.checkins["first" if first else "already"] += 1
                elif action_id.startswith("engagement:welcome:"):
                    # engagement:welcome:{tenant}:{group}:{window}[:{member}, a single one]
                    single = len(action_id.split(":")) > 5
                    outcomes.welcomes["single" if single else "combined"] += 1
                outcomes.autoreplies += action_id.endswith(":autoreply")
    for item in items[-10:]:
        who = (item.get("member") or {}).get("id", "")
        state = item.get("status", "")
        text = str(item.get("text") or "").replace("\n", " ")[:36]
        outcomes.excerpt.append(
            f"{item['at'][:19]}  {item['kind']:<6} {item['type']:<15} {who:<12} {state:<9} {text}"
        )
    return outcomes


async def wait_for_pipeline(
    sender: Sender, scenario: Scenario, tally: Tally, within: float = WAIT_SECONDS
) -> tuple[int, float]:
    """Poll until analytics has counted the first focus group's messages of this run and its
    timeline holds all its events (so that the sim platform knows its members before the kick).
    Returns the messages counted and the seconds waited; 0 messages means nothing was counted."""
    group = scenario.focus[0].id
    expected_events = sum(1 for e in scenario.events if e["group_id"] == group)
    wanted = max(1, tally.accepted_messages[group])
    start, end = stats_window(scenario)
    started = time.monotonic()
    counted = 0
    while True:
        with contextlib.suppress(httpx.HTTPError):  # a service restarting: poll again
            counted = await sender.messages_counted(group, start, end)
            if counted >= wanted and await sender.timeline_events(group) >= expected_events:
                return counted, time.monotonic() - started
        if time.monotonic() - started > within:
            return counted, time.monotonic() - started
        await asyncio.sleep(0.5)


async def run_demo(
    dev_file: Path,
    *,
    seed: int = 7,
    groups: int = 20,
    members: int = 2000,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Build the scenario, send it, wait for the pipeline, act, and print the summary."""
    try:
        stack = DevStack.read(dev_file)
        scenario = build_scenario(seed, groups=groups, members=members)
        async with httpx.AsyncClient(timeout=60.0) as http:
            sender = Sender(http, stack)
            await sender.set_rules(scenario.focus[-1].id)
            await engage.set_up(sender)
            progress = Progress(len(scenario.events), err)
            started = time.monotonic()
            try:
                tally = await sender.send_events(scenario.events, progress)
            finally:
                progress.close()
            seconds = time.monotonic() - started
            counted = await wait_for_pipeline(sender, scenario, tally)
            for action in scenario.actions:
                await sender.send_action(action)
            deduped = await dedupe(sender, scenario.series, out)
            played = await engage.play(sender, scenario)
            converted = await convert.play(sender, scenario)
            outcomes = await wait_for_outcomes(sender, scenario, deduped)
            week = await sender.tenant_days(*stats_window(scenario))
            reports = await sender.reports(*stats_window(scenario))
    except (DemoError, ValueError) as exc:
        print(f"shequn demo: {exc}", file=err)
        return 1
    print(
        summary(
            scenario,
            tally,
            stack,
            dev_file,
            seconds,
            counted,
            outcomes,
            played,
            converted,
            week,
            reports,
        ),
        file=out,
    )
    if not counted[0]:
        print("shequn demo: analytics counted nothing within a minute; is it running?", file=err)
        return 1
    return 0
