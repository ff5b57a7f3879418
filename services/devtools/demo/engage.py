"""The demo's engagement: what an operator sets up before the week (the welcome, auto-replies)
and does after it in the first group (a quiz, a poll, a lottery draw), and what engagement
made of it all (welcomes, auto-replies, segments). Live messages get ids of their own run, so a
second run plays again instead of being taken for duplicates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.devtools.demo.cast import TZ, Body, Group, Scenario, text_message
from services.devtools.demo.sender import DemoError, Sender

WELCOME = {
    "template": "欢迎 {nickname} 加入{group_name}！{rules}",
    "rules": "本群禁止广告，每天发送“签到”领积分。",
}
RULES: list[Body] = [
    {
        "keywords": ["优惠", "优惠券"],
        "reply": {"text": "本周优惠：满199减30，下单时选「满减券」。"},
    },
    {
        "keywords": ["发货", "快递"],
        "cooldown_seconds": 300,
        "reply": {
            "link_card": {"title": "发货与物流说明", "url": "https://shop.example.com/shipping"}
        },
        "tag": "问物流",
    },
]


@dataclass
class Played:
    """What the operator's live steps came to."""

    quiz: Body = field(default_factory=dict)
    poll: Body = field(default_factory=dict)
    draw: Body = field(default_factory=dict)
    segments: dict[str, Body] = field(default_factory=dict)


async def set_up(sender: Sender) -> None:
    """The tenant's welcome, and its auto-reply rules unless a run before made them."""
    base = sender.stack.engagement
    await sender.put(f"{base}/v1/engagement/settings", {"welcome": WELCOME})
    have = await sender.get(f"{base}/v1/autoreplies")
    known = {tuple(r["keywords"]) for r in have["rules"]}
    for rule in RULES:
        if tuple(rule["keywords"]) not in known:
            await sender.post(f"{base}/v1/autoreplies", rule, expected=201)


def _members(scenario: Scenario, group: Group, count: int) -> list[Body]:
    """Members of the group who joined and stayed: they answer the quiz and vote."""
    here = [e for e in scenario.events if e["group_id"] == group.id]
    left = {e["member"]["id"] for e in here if e["type"] == "member_left"}
    seen: dict[str, Body] = {}
    for e in here:
        member = e.get("member") or {}
        joined = e["type"] == "member_joined" and member.get("role") == "member"
        if joined and member["id"] not in left:
            seen.setdefault(member["id"], member)
    return list(seen.values())[:count]


async def _say(sender: Sender, group: Group, who: Body, text: str) -> None:
    run = uuid.uuid4().hex[:10]
    body = {
        "event_id": f"live-{run}",
        "type": "message_posted",
        "group_id": group.id,
        "platform": "sim",
        "member": who,
        "message": text_message(f"live-m-{run}", text),
    }
    await sender.post(f"{sender.stack.ingestion}/v1/events", {"events": [body]}, expected=202)


async def play(sender: Sender, scenario: Scenario) -> Played:
    """After the week, in the first group: a quiz won, a poll closed, a draw; then segments."""
    base, group = sender.stack.engagement, scenario.focus[0]
    people = _members(scenario, group, 6)
    if len(people) < 4:
        raise DemoError(f"{group.name} has too few members for the live steps")
    played = Played()
    soon = datetime.now(UTC) + timedelta(seconds=60)
    quiz = {"group_id": group.id, "question": "「双十二」满多少减30？", "answers": ["199"]}
    asked = await sender.post(
        f"{base}/v1/quizzes", {**quiz, "points": 20, "closes_at": soon.isoformat()}, expected=201
    )
    await _say(sender, group, people[0], "99")
    await _say(sender, group, people[1], "１９９")
    url = f"{base}/v1/quizzes/{asked['quiz_id']}"
    played.quiz = await sender.until(url, lambda q: q["state"] != "open")

    closes = datetime.now(UTC) + timedelta(seconds=6)
    poll = {
        "group_id": group.id,
        "question": "下次团购选哪个？",
        "options": ["零食礼包", "日用百货"],
    }
    opened = await sender.post(
        f"{base}/v1/polls", {**poll, "closes_at": closes.isoformat()}, expected=201
    )
    for who, vote in zip(people, ["1", "2", "1", "零食礼包", "2", "1"], strict=False):
        await _say(sender, group, who, vote)
    url = f"{base}/v1/polls/{opened['poll_id']}"
    played.poll = await sender.until(url, lambda p: p["state"] == "closed")

    prizes = [
        {"name": "定制帆布袋", "weight": 1, "stock": 5},
        {"name": "5元券", "weight": 4, "stock": 50},
    ]
    lottery = await sender.post(
        f"{base}/v1/lotteries", {"name": "签到抽奖", "cost": 50, "prizes": prizes}, expected=201
    )
    lucky = people[2]["id"]
    gift = {
        "grant_id": f"demo-{scenario.seed}-gift",
        "member_id": lucky,
        "points": 50,
        "reason": "活动奖励",
    }
    await sender.post(f"{base}/v1/points/grants", gift, expected=200)
    try:
        played.draw = await sender.post(
            f"{base}/v1/lotteries/{lottery['lottery_id']}/draws", {"member_id": lucky}, expected=200
        )
    except DemoError as exc:  # a second run: the gift was given once, and spent
        played.draw = {"refused": str(exc).rsplit("→", 1)[-1].strip()}
    played.draw["member_id"] = lucky
    last_day = (scenario.now.astimezone(TZ).date() - timedelta(days=1)).isoformat()
    for g in scenario.focus:
        url = f"{base}/v1/groups/{g.id}/segments"
        played.segments[g.name] = await sender.get(url, {"date": last_day})
    return played


def lines(played: Played, welcomes: dict[str, int], autoreplies: int) -> list[str]:
    """The summary's engagement lines."""
    quiz, poll, draw = played.quiz, played.poll, played.draw
    winner = (quiz.get("winner") or {}).get("member_id", "nobody")
    results = ", ".join(f"{r['option']} {r['votes']}" for r in poll.get("results", []))
    if "prize" in draw:
        drawn = (draw["prize"] or {}).get("name", "nothing")
        drew = f"{draw['member_id']} drew {drawn}, balance {draw['balance']}"
    else:
        drew = f"{draw['member_id']}: {draw.get('refused', 'no draw')}"
    segment = "; ".join(
        f"{name} KOC {s['koc']} / interactive {s['interactive']} / silent {s['silent']}"
        for name, s in played.segments.items()
    )
    return [
        f"  welcomes      in the groups below: {welcomes['single']} single, "
        f"{welcomes['combined']} combined; {autoreplies} auto-replies",
        f"  quiz          {quiz.get('question', '')} won by {winner}; "
        f"poll {poll.get('question', '')} {poll.get('state', '')}: {results}",
        f"  lottery       {drew}",
        f"  segments      {segment} (the week's last day)",
    ]
