"""The run: send the scenario, wait for the pipeline, dedupe the 福利 series, and print the
summary of where to look."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx

from services.devtools.demo.cast import TZ, WAIT_SECONDS, Body, Scenario
from services.devtools.demo.sender import DemoError, DevStack, Progress, Sender, Tally
from services.devtools.demo.story import build_scenario


@dataclass(frozen=True)
class Dedupe:
    """Member dedupe of the 福利 series: the dry run, and the plan applied if it removed anyone."""

    plan: Body
    applied: Body | None = None

    @property
    def kicks(self) -> list[Body]:
        return list(self.applied["outcome"]["kicks"]) if self.applied else []


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


@dataclass
class Outcomes:
    """What the system did with the week: moderation decisions, member dedupe, and the
    deliveries in the focus groups (those of the dedupe kicks also counted apart)."""

    dedupe: Dedupe
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    qr_code_ads: int = 0
    deliveries: Counter[str] = field(default_factory=Counter)
    dedupe_deliveries: Counter[str] = field(default_factory=Counter)
    excerpt: list[str] = field(default_factory=list)


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
    for item in items[-10:]:
        who = (item.get("member") or {}).get("id", "")
        state = item.get("status", "")
        text = str(item.get("text") or "")[:36]
        outcomes.excerpt.append(
            f"{item['at'][:19]}  {item['kind']:<6} {item['type']:<15} {who:<12} {state:<9} {text}"
        )
    return outcomes


def stats_window(scenario: Scenario) -> tuple[date, date]:
    """The days of the story in the tenant's time zone, and today (the operator's actions)."""
    today = scenario.now.astimezone(TZ).date()
    return today - timedelta(days=7), today


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


def summary(
    scenario: Scenario,
    tally: Tally,
    stack: DevStack,
    dev_file: Path,
    seconds: float,
    counted: tuple[int, float],
    outcomes: Outcomes | None = None,
) -> str:
    events = scenario.events
    kinds = Counter(e["type"] for e in events)
    members = {e["member"]["id"] for e in events if e["type"] == "member_joined"}
    start, end = stats_window(scenario)
    rate = tally.sent / seconds if seconds else 0.0
    last_day = end - timedelta(days=1)
    lines = [
        f"Demo (seed {scenario.seed}): {len(scenario.groups)} groups on the sim platform, "
        f"{start.isoformat()} to {last_day.isoformat()}, tenant 'dev'.",
        f"  events sent   {tally.sent:,} in {seconds:.1f} s ({rate:,.0f}/s): "
        f"{tally.accepted:,} accepted, {tally.duplicates:,} duplicates",
        f"  groups        {len(scenario.groups)}",
        f"  members       {len(members):,} joined, {kinds['member_left']:,} left",
        f"  messages      {kinds['message_posted']:,}; {kinds['order_placed']:,} orders, "
        f"{kinds['coupon_redeemed']:,} coupons redeemed",
        f"  actions       {len(scenario.actions)} requested "
        "(welcomes, a spammer kicked, a rename undone, a link card, a red packet)",
    ]
    if tally.sent and not tally.accepted:
        lines.append("  (this seed was sent before; --seed N sends another story)")
    messages, waited = counted
    first = scenario.focus[0]
    if messages:
        lines.append(
            f"  analytics     {messages:,} messages counted in {first.name} ({waited:.1f} s)"
        )
    else:
        lines.append(f"  analytics     nothing counted in {first.name} after {waited:.0f} s")
    if outcomes is not None:
        ruled = ", ".join(
            f"{rule} {penalty} {n}" for (rule, penalty), n in sorted(outcomes.decisions.items())
        )
        delivered, kicks_delivered = (
            ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "none"
            for counts in (outcomes.deliveries, outcomes.dedupe_deliveries)
        )
        deduped = (
            f"{len(outcomes.dedupe.kicks)} kicks from groups joined later; "
            f"in the groups below: {kicks_delivered}"
            if outcomes.dedupe.applied
            else "nobody to remove"
        )
        lines += [
            f"  moderation    {sum(outcomes.decisions.values())} decisions: {ruled or 'none'} "
            f"({outcomes.qr_code_ads} of the ads QR codes in pictures)",
            f"  dedupe        {scenario.series}: {deduped}",
            f"  deliveries    in the groups below: {delivered}",
            "",
            f"The end of {first.name}'s timeline:",
            *(f"  {line}" for line in outcomes.excerpt),
        ]
    window = f"from={start.isoformat()}&to={end.isoformat()}"
    lines += ["", "Where to look:"]
    for group in scenario.focus:
        lines += [
            f"  {group.name} ({group.id})",
            f"    timeline  {stack.ingestion}/v1/groups/{group.id}/timeline",
            f"    stats     {stack.analytics}/v1/stats/groups/{group.id}/daily?{window}",
        ]
    if outcomes is not None:
        plan_id = outcomes.dedupe.plan["plan_id"]
        lines.append(f"  dedupe plan   {stack.moderation}/v1/dedupe/plans/{plan_id}")
    lines += [
        "",
        f"  KEY=$(jq -r .api_key {dev_file})",
        f'  curl -s -H "Authorization: Bearer $KEY" '
        f"'{stack.ingestion}/v1/groups/{first.id}/timeline?limit=20'",
        f'  curl -s -H "Authorization: Bearer $KEY" '
        f"'{stack.analytics}/v1/stats/groups/{first.id}/daily?{window}'",
        "",
        "  API docs:",
        *(f"    {name:<11} {url}" for name, url in stack.docs.items()),
    ]
    return "\n".join(lines)


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
            outcomes = await wait_for_outcomes(sender, scenario, deduped)
    except (DemoError, ValueError) as exc:
        print(f"shequn demo: {exc}", file=err)
        return 1
    print(summary(scenario, tally, stack, dev_file, seconds, counted, outcomes), file=out)
    if not counted[0]:
        print("shequn demo: analytics counted nothing within a minute; is it running?", file=err)
        return 1
    return 0
