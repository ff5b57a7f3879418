"""The report the demo ends with: what was sent, what the system did with it (decisions,
dedupe, deliveries, the end of a timeline) and where to look. Plain code over what the run
gathered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from services.devtools.demo import convert, engage
from services.devtools.demo.cast import TZ, Body, Scenario
from services.devtools.demo.convert import Converted
from services.devtools.demo.engage import Played
from services.devtools.demo.sender import DevStack, Tally


@dataclass(frozen=True)
class Dedupe:
    """Member dedupe of the 福利 series: the dry run, and the plan applied if it removed anyone."""

    plan: Body
    applied: Body | None = None

    @property
    def kicks(self) -> list[Body]:
        return list(self.applied["outcome"]["kicks"]) if self.applied else []


@dataclass
class Outcomes:
    """What the system did with the week: moderation decisions, member dedupe, and the
    deliveries in the focus groups (those of the dedupe kicks also counted apart)."""

    dedupe: Dedupe
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    qr_code_ads: int = 0
    deliveries: Counter[str] = field(default_factory=Counter)
    dedupe_deliveries: Counter[str] = field(default_factory=Counter)
    checkins: Counter[str] = field(default_factory=Counter)  # answered: first | already
    welcomes: Counter[str] = field(default_factory=Counter)  # single | combined
    autoreplies: int = 0
    excerpt: list[str] = field(default_factory=list)


def stats_window(scenario: Scenario) -> tuple[date, date]:
    """The days of the story in the tenant's time zone, and today (the operator's actions)."""
    today = scenario.now.astimezone(TZ).date()
    return today - timedelta(days=7), today


def summary(
    scenario: Scenario,
    tally: Tally,
    stack: DevStack,
    dev_file: Path,
    seconds: float,
    counted: tuple[int, float],
    outcomes: Outcomes | None = None,
    played: Played | None = None,
    converted: Converted | None = None,
    week: Sequence[dict[str, Any]] = (),
    reports: dict[str, Any] | None = None,
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
            f"  engagement    {sum(outcomes.checkins.values())} check-ins answered in the groups "
            f"below: {outcomes.checkins['first']} the day's first, "
            f"{outcomes.checkins['already']} told they had checked in already",
            *(engage.lines(played, outcomes.welcomes, outcomes.autoreplies) if played else []),
            *(convert.lines(converted) if converted else []),
            *tenant_week(week),
            *tenant_reports(reports or {}),
            "",
            f"The end of {first.name}'s timeline:",
            *(f"  {line}" for line in outcomes.excerpt),
        ]
    window = f"from={start.isoformat()}&to={end.isoformat()}"
    stats = f"{stack.analytics}/v1/stats"
    lines += ["", "Where to look:", f"  the tenant  {stats}/daily?{window}",
              f"  reports     {stats}/funnel?{window} (retention, livecodes, roi, "
              "leaderboards/talkers, dead-groups: the same parameters, ?format=csv)"]  # fmt: skip
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


def tenant_week(days: Sequence[dict[str, Any]]) -> list[str]:
    """The tenant's days as WeCom counts them (groups and members at each day's end)."""
    if not days:
        return []
    lines = ["", "The tenant's week (analytics, the WeCom statistics set):",
             "  day     groups  new  with messages  members  new  posted  messages"]  # fmt: skip
    for d in days:
        lines.append(
            f"  {d['date'][5:]}  {d['groups_total']:>6,} {d['groups_new']:>4,} "
            f"{d['groups_with_messages']:>14,} {d['members_total']:>8,} {d['members_new']:>4,} "
            f"{d['members_posted']:>7,} {d['messages_total']:>9,}"
        )
    return lines


def tenant_reports(reports: dict[str, Any]) -> list[str]:
    """The week in the reports: AARRR, retention, live codes, talkers, dead groups."""
    if not reports:
        return []
    [f] = reports["funnel"]
    cohorts = reports["retention"]
    joined = sum(c["joined"] for c in cohorts)
    stayed = [c for c in cohorts if c["d1_members"] is not None]
    with_d1 = sum(c["joined"] for c in stayed)
    lines = [
        "",
        "The tenant's reports (analytics):",
        f"  AARRR         acquired {f['acquired']:,} → activated {f['activated']:,} → "
        f"retained D7 {f['retained_d7']:,}; revenue {f['revenue_orders']:,} orders "
        f"¥{f['revenue_amount'] / 100:,.2f}; referral {f['referrers']:,} members brought "
        f"{f['referred']:,}",
        f"  retention     {joined:,} joined in the week; of the {with_d1:,} "
        f"with a D1, {sum(c['d1_members'] for c in stayed):,} still members, "
        f"{sum(c['d1_active'] for c in stayed):,} posted on D1",
    ]
    for code in reports["livecodes"]:
        lines.append(
            f"  live code     {code['livecode']}: scans {code['scans']:,} → joins "
            f"{code['joins']:,} → stayed {code['stayed']:,} → activated {code['activated']:,}; "
            f"invited {code['invited_joins']:,}, fission completed {code['completed']:,}"
        )
    talkers = ", ".join(f"{t['member_id']} {t['value']}" for t in reports["talkers"])
    lines.append(f"  talkers       {talkers or 'none'}")
    dead = ", ".join(
        f"{g['name'] or g['group_id']} ({g['reason']}, {g['active_7d']}/{g['members']} active)"
        for g in reports["dead"]
    )
    lines.append(f"  dead groups   {dead or 'none'}")
    return lines
