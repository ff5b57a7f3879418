"""The demo's campaign (转化, 推荐): what an operator runs after the week. A live code for a new
activity that fills two groups and spills into a third; a fission task (its stay shortened to
11 s, so that the demo sees invitees counted) that completes for one member, not for another
who brought too few, and not for a third whose invitations are a fraud (a self-invite, a member
of the week coming back, an invitee who leaves at once); a daily SOP, whose first slot is a few
seconds away; a broadcast to the 福利 series with its live counts; and the handover of a
leaving staff member's groups. Ids carry the run, so a second run plays again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.devtools.demo.cast import TZ, Body, Scenario
from services.devtools.demo.sender import DemoError, Sender

CAPACITY, SCANS = 40, 95  # 40 + 40 + 15: two groups filled, the third begun
STAY_HOURS = 0.003  # 10.8 s
POINTS = 30


@dataclass
class Converted:
    """What the operator's campaign steps came to."""

    livecode: Body = field(default_factory=dict)
    scans: dict[int, int] = field(default_factory=dict)  # HTTP status: scans
    funnel: Body = field(default_factory=dict)
    inviters: list[Body] = field(default_factory=list)
    sop: Body = field(default_factory=dict)
    broadcast: Body = field(default_factory=dict)
    handover: Body = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # group id: name


def _event(kind: str, group_id: str, run: str, n: int, **body: Any) -> Body:
    return {"event_id": f"live-{run}-{kind}-{n}", "type": kind, "group_id": group_id,
            "platform": "sim", **body}  # fmt: skip


async def _events(sender: Sender, events: list[Body]) -> None:
    for start in range(0, len(events), 500):
        batch = {"events": events[start : start + 500]}
        await sender.post(f"{sender.stack.ingestion}/v1/events", batch, expected=202)


async def _scan(sender: Sender, code: str, n: int) -> tuple[int, Body]:
    """A person's scan of the public page (from an address of their own, behind the proxy)."""
    response = await sender.http.post(
        f"{sender.stack.campaign}/v1/livecodes/{code}/scan",
        json={},
        headers={"x-forwarded-for": f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"},
    )
    return response.status_code, response.json()


async def play(sender: Sender, scenario: Scenario) -> Converted:
    base, seed, run = sender.stack.campaign, scenario.seed, uuid.uuid4().hex[:6]
    done = Converted()
    # A new activity's three groups, and its live code.
    tag = f"demo-{seed}-双十二-{run}"
    activity = [f"demo-{seed}-a{run}-{i}" for i in (1, 2, 3)]
    owner = scenario.groups[0].owner
    await _events(sender, [
        _event("group_created", g, run, i, group={"name": f"双十二活动{i + 1}群", "tags": [tag],
                                                  "owner_id": owner.id})
        for i, g in enumerate(activity)
    ])  # fmt: skip
    done.names = {g: f"双十二活动{i + 1}群" for i, g in enumerate(activity)}
    code = f"demo-{seed}-{run}"
    await sender.until(f"{base}/v1/directory/groups?tag={tag}", lambda d: len(d["groups"]) == 3)
    made = {"code": code, "groups": activity, "capacity": CAPACITY, "channel": "海报"}
    await sender.post(f"{base}/v1/livecodes", made, expected=201)
    joins = []
    for n in range(SCANS):
        status, answer = await _scan(sender, code, n)
        done.scans[status] = done.scans.get(status, 0) + 1
        if status == 200:
            member = {"id": f"demo-{seed}-n{run}-{n}", "name": f"新朋友{n + 1}"}
            joins.append(_event("member_joined", answer["group_id"], run, n, member=member,
                                scene="livecode", livecode=code,
                                join_token=answer["join_token"]))  # fmt: skip
    await _events(sender, joins)
    done.livecode = await sender.until(
        f"{base}/v1/livecodes/{code}",
        lambda c: sum(g["members"] for g in c["groups"]) >= len(joins),
    )
    await _fission(sender, scenario, code, run, done)
    await _sop_and_broadcast(sender, scenario, run, done)
    await _handover(sender, scenario, run, done)
    return done


async def _fission(
    sender: Sender, scenario: Scenario, code: str, run: str, done: Converted
) -> None:
    base, seed = sender.stack.campaign, scenario.seed
    coupon = await sender.post(
        f"{base}/v1/coupons", {"name": "邀请有礼5元券", "value": 5, "stock": 100}, expected=201
    )
    task = {"name": "邀请3位好友进群", "goal": 3, "livecode": code, "stay_hours": STAY_HOURS,
            "reward": {"coupon_id": coupon["coupon_id"], "points": POINTS}}  # fmt: skip
    made = await sender.post(f"{base}/v1/fission/tasks", task, expected=201)
    url = f"{base}/v1/fission/tasks/{made['task_id']}"
    regulars = _regulars(scenario)
    if len(regulars) < 4:
        raise DemoError("the week has too few members for the fission task")
    star, starter, cheat, old = regulars[:4]
    codes = {}
    for who in (star, starter, cheat):
        asked = await sender.post(f"{url}/codes", {"member_id": who}, expected=200)
        codes[who] = asked["code"]
    events, n = [], 1000
    # Three friends of the star's and one of the starter's scan their codes and join.
    for inviter, friends in ((star, 3), (starter, 1)):
        for _ in range(friends):
            n += 1
            status, answer = await _scan(sender, codes[inviter], n)
            if status != 200:
                raise DemoError(f"the fission scan failed: {status} {answer}")
            member = {"id": f"demo-{seed}-f{run}-{n}", "name": f"好友{n - 1000}"}
            events.append(_event("member_joined", answer["group_id"], run, n, member=member,
                                 scene="livecode", join_token=answer["join_token"]))  # fmt: skip
    # The cheat: their own code, a member of the week, and a friend who leaves at once.
    group = done.livecode["groups"][-1]["group_id"]
    leaver = {"id": f"demo-{seed}-f{run}-gone", "name": "路过"}
    events += [
        _event("member_joined", group, run, 2001, member={"id": cheat}, invite_code=codes[cheat]),
        _event("member_joined", group, run, 2002, member={"id": old}, invite_code=codes[cheat]),
        _event("member_joined", group, run, 2003, member=leaver, invite_code=codes[cheat]),
    ]
    await _events(sender, events)
    left = _event("member_left", group, run, 2004, member={"id": leaver["id"]}, reason="quit")
    await _events(sender, [left])
    done.funnel = await sender.until(
        f"{url}/funnel", lambda f: f["completed"] >= 1 and f["counted"] >= 4, 120
    )
    # The reward goes after the completion: wait for it to be given, not only due.
    found = await sender.until(
        f"{url}/inviters",
        lambda f: all(
            (i.get("reward") or {}).get("state") == "given"
            for i in f["inviters"]
            if i.get("completed_at")
        ),
        120,
    )
    done.inviters = found["inviters"]


def _regulars(scenario: Scenario) -> list[str]:
    """Members of the first group who joined in the week and stayed (fission's inviters, and a
    member of the week coming back)."""
    group = scenario.focus[0].id
    here = [e for e in scenario.events if e["group_id"] == group]
    left = {e["member"]["id"] for e in here if e["type"] == "member_left"}
    found = []
    for e in here:
        member = e.get("member") or {}
        joined = e["type"] == "member_joined" and member.get("role") == "member"
        if joined and member["id"] not in left and member["id"] not in found:
            found.append(member["id"])
    return found


async def _sop_and_broadcast(sender: Sender, scenario: Scenario, run: str, done: Converted) -> None:
    base = sender.stack.campaign
    first = (datetime.now(TZ) + timedelta(seconds=8)).replace(microsecond=0)
    daily = f"{first.minute} {first.hour} * * * {first.second}"  # every day at that second
    schedule = {"name": f"每日早安 {run}", "cron": daily, "tag": scenario.series,
                "timezone": "Asia/Shanghai",
                "text": "{group_name}的朋友们，今日福利已更新，晚上8点秒杀不见不散～"}  # fmt: skip
    made = await sender.post(f"{base}/v1/sop/schedules", schedule, expected=201)
    url = f"{base}/v1/sop/schedules/{made['schedule_id']}/runs"
    runs = await sender.until(
        url, lambda r: bool(r["runs"]) and r["runs"][0]["counts"]["pending"] == 0
    )
    done.sop = {"at": first.strftime("%H:%M:%S"), **(runs["runs"][0] if runs["runs"] else {})}
    sent = await sender.post(
        f"{base}/v1/broadcasts",
        {"client_id": f"demo-{run}", "tag": scenario.series,
         "text": "【双十二预告】全场满199减30，今晚8点开抢！"},
    )  # fmt: skip
    done.broadcast = await sender.until(
        f"{base}/v1/broadcasts/{sent['broadcast_id']}", lambda b: b["counts"]["pending"] == 0
    )


async def _handover(sender: Sender, scenario: Scenario, run: str, done: Converted) -> None:
    """The owner of the activity groups leaves; a colleague takes them over."""
    base = sender.stack.campaign
    leaver, heir = scenario.groups[0].owner, scenario.groups[0].admins[0]
    body = {"from_owner": leaver.id, "to_owner": heir.id, "handover_id": f"demo-{run}",
            "groups": list(done.names)}  # fmt: skip
    made = await sender.post(f"{base}/v1/handovers", body, expected=201)
    done.handover = await sender.until(
        f"{base}/v1/handovers/{made['handover_id']}",
        lambda h: h["counts"]["pending"] == h["counts"]["sending"] == 0,
    )
    done.handover |= {"leaver": leaver.name, "heir": heir.name}


def lines(done: Converted) -> list[str]:
    """The summary's campaign lines."""
    filled = ", ".join(
        f"{done.names.get(g['group_id'], g['group_id'])} {g['members']}/{CAPACITY}"
        for g in done.livecode.get("groups", [])
    )
    scans = ", ".join(f"{n} × {status}" for status, n in sorted(done.scans.items()))
    funnel = done.funnel
    why = ", ".join(f"{r} {n}" for r, n in funnel.get("not_counted", {}).items() if n)
    inviters = "; ".join(
        f"{i['member_id']} {i['counted']} counted{_reward(i)}" for i in done.inviters
    )
    sop, counts = done.sop, done.broadcast.get("counts", {})
    reached = sop.get("counts", {})
    handed = done.handover.get("counts", {})
    return [
        f"  live code     {done.livecode.get('code', '')}: {scans} scans; {filled}",
        f"  fission       codes {funnel.get('codes_issued', 0)} → scans {funnel.get('scans', 0)}"
        f" → joins {funnel.get('joins', 0)} → counted {funnel.get('counted', 0)} → completed "
        f"{funnel.get('completed', 0)} (join rate {funnel.get('join_rate', 0):.2f}, completion "
        f"rate {funnel.get('completion_rate', 0):.2f}); not counted: {why or 'none'}",
        f"                {inviters}",
        f"  SOP           daily at {sop.get('at', '?')} (Shanghai), its first slot "
        f"{sop.get('state', 'not yet')}: {_counted(reached)}",
        f"  broadcast     to the 福利 series: {_counted(counts)}",
        f"  handover      {done.handover.get('leaver', '')} left: "
        f"{handed.get('transferred', 0)} groups to {done.handover.get('heir', '')}, "
        f"{handed.get('failed', 0)} failed",
    ]


def _reward(inviter: Body) -> str:
    if not inviter.get("completed_at"):
        return ""
    reward = inviter.get("reward") or {}
    if reward.get("state") != "given":
        return f", completed (reward {reward.get('state', 'due')})"
    return f", completed: coupon {reward.get('coupon_code', '?')} and {POINTS} points"


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "nothing yet"
