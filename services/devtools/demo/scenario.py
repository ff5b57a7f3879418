"""A week of group life as a scenario: a seed and "now" in, event and action bodies out, no I/O
(`build_scenario`). Every id follows from the seed and a counter."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as clock
from random import Random

from services.devtools.demo.cast import (
    ABUSE,
    AD_DOMAINS,
    ADS,
    ANNOUNCEMENTS,
    ANSWERS,
    CHANNELS,
    CHAT,
    CHECKIN_THEMES,
    CHECKINS,
    GREETINGS,
    LIVECODE,
    PRICES,
    QUESTIONS,
    SPAM_REACTIONS,
    STAFF_NAMES,
    THANKS,
    TZ,
    Body,
    Group,
    Person,
    Scenario,
    group_names,
    moment,
    nickname,
    photo,
    picture_message,
    qr_picture,
    series_tag,
    week_end,
)
from services.devtools.demo.story import Life, Story


def _after_join(story: Story, chances: int, join: datetime | None = None) -> list[datetime]:
    """A join in the week (at `join` if given) and the moments of the member's messages: of
    `chances` moments in the week, those after the join (so that late joiners say less, as they
    do)."""
    join = join or moment(story.rng, story.end)
    said = (moment(story.rng, story.end) for _ in range(chances))
    return [join, *sorted(at for at in said if at > join)]


def _burst(story: Story, ads: int) -> list[datetime]:
    """A spammer joins and posts within the hour."""
    join = moment(story.rng, story.end)
    return [join, *(story.later(join, 60 * i, 60 * i + 600) for i in range(1, ads + 1))]


def build_scenario(
    seed: int = 7, now: datetime | None = None, *, groups: int = 20, members: int = 2000
) -> Scenario:
    """A week of `groups` groups that `members` members join, talk in and buy from."""
    if groups < 1 or members < 10:
        raise ValueError("a demo needs at least 1 group and 10 members")
    now = (now or datetime.now(TZ)).astimezone(TZ).replace(microsecond=0)
    rng = Random(seed)
    story = Story(seed, rng, week_end(now))

    staff = [Person(f"demo-{seed}-s{i + 1:02d}", n) for i, n in enumerate(STAFF_NAMES)]
    plan: list[Group] = []
    for i, (name, theme) in enumerate(group_names(groups)):
        owner, *admins = rng.sample(staff, 1 + rng.randint(1, 3))
        plan.append(
            Group(
                f"demo-{seed}-g{i + 1:02d}",
                name,
                theme,
                Person(owner.id, owner.name, "owner"),
                [Person(a.id, a.name, "admin") for a in admins],
                series_tag(seed, theme),
            )
        )

    lives: dict[str, list[Life]] = {g.id: [] for g in plan}
    sizes = [rng.uniform(0.5, 1.5) for _ in plan]
    spammers = max(1, members // 250)
    abusers = max(1, members // 400)
    # Deal hunters (羊毛党) join one 福利 group after another for the giveaways, 福利1群 last:
    # member dedupe's work, and its kicks show in the timeline excerpt of the summary.
    welfare = [g for g in plan if g.theme == "福利"]
    hunters = max(2, members // 400) if len(welfare) > 1 else 0
    for n in range(members):
        home = plan[0] if n == 0 else rng.choices(plan, weights=sizes)[0]
        person = Person(f"demo-{seed}-u{n + 1:04d}", nickname(rng, home.theme))
        if spammers + abusers <= n < spammers + abusers + hunters:
            hunted = [*rng.sample(welfare[1:], min(2, len(welfare) - 1)), welfare[0]]
            joins = sorted(moment(rng, story.end) for _ in hunted)
            for group, join in zip(hunted, joins, strict=True):
                lives[group.id].append(Life(person, _after_join(story, rng.randint(1, 6), join)))
            continue
        spammer, abusive = n < spammers, spammers <= n < spammers + abusers
        level = rng.choices((0, 1, 2, 3), weights=(25, 30, 30, 15))[0]
        chances = (0, rng.randint(2, 8), rng.randint(10, 30), rng.randint(32, 80))[level]
        times = _burst(story, rng.randint(2, 4)) if spammer else _after_join(story, chances)
        if abusive and len(times) == 1:
            times.append(story.later(times[0], 600, 3600))
        quits = not spammer and rng.random() < 0.03
        lives[home.id].append(Life(person, times, spammer, spammer and n > 0, abusive, quits))
        if len(plan) > 1 and not spammer and rng.random() < 0.05:
            other = rng.choice([g for g in plan if g is not home])  # a second, quieter group
            lives[other.id].append(Life(person, _after_join(story, rng.randint(1, 6))))

    for group in plan:
        _group_life(story, group, lives[group.id])
    _wave(story, plan[0])

    renamed = plan[2 % len(plan)]
    _member_renames(story, renamed, lives[renamed.id])
    if len(plan) > 3:
        _owner_renames(story, plan[3])
    _operator_actions(story, plan, lives, renamed)
    _quiet_group(story, seed, staff[0])

    story.events.sort(key=lambda item: (item[0], item[1]))
    focus = list({g.id: g for g in (plan[0], plan[1 % len(plan)], renamed)}.values())
    events = [body for _, _, body in story.events]
    return Scenario(seed, now, plan, events, story.actions, focus, series_tag(seed, "福利"))


def _wave(story: Story, group: Group) -> None:
    """A poster campaign brings four into the group within a minute, who greet it: one
    combined welcome names them all. A generator of its own: the rest of the story stays."""
    rng = Random(story.seed * 7919 + 1)
    wave = moment(rng, story.end)
    for i in range(4):
        person = Person(f"demo-{story.seed}-w{i + 1}", nickname(rng, group.theme))
        joined = wave + timedelta(seconds=12 * i)
        story.emit("member_joined", group, joined, member=person.ref(), scene="qr")
        story.say(group, person, joined + timedelta(seconds=rng.randint(90, 600)), "大家好👋")


QUIET_MEMBERS = 100


def _quiet_group(story: Story, seed: int, owner: Person) -> None:
    """A follow-up group of old customers, filled on the week's first day and silent after its
    owner's greeting the day after: 1 of 101 members active, what the dead-group list is for."""
    boss = Person(owner.id, owner.name, "owner")
    group = Group(f"demo-{seed}-quiet", "老客户回访群", "回访", boss, [], series_tag(seed, "回访"))
    created = story.end - timedelta(days=7) + timedelta(hours=9)
    info = {"name": group.name, "owner_id": owner.id, "tags": [group.series]}
    story.emit("group_created", group, created, group=info, actor=group.owner.ref())
    story.emit("member_joined", group, created + timedelta(seconds=1), member=group.owner.ref())
    for n in range(QUIET_MEMBERS):
        who = Person(f"demo-{seed}-q{n + 1:03d}", f"老客户{n + 1}")
        at = created + timedelta(minutes=5 + n)
        story.emit("member_joined", group, at, member=who.ref(), scene="qr")
    story.say(group, group.owner, created + timedelta(days=1), "欢迎各位老客户，有问题随时找我～")


def _group_life(story: Story, group: Group, lives: list[Life]) -> None:
    rng = story.rng
    first = min((life.times[0] for life in lives), default=story.end - timedelta(days=3))
    created = first - timedelta(minutes=rng.randint(10, 120))
    info = {"name": group.name, "owner_id": group.owner.id, "tags": [group.series]}
    story.emit("group_created", group, created, group=info, actor=group.owner.ref())
    story.emit("member_joined", group, created + timedelta(seconds=1), member=group.owner.ref())
    for admin in group.admins:
        at = created + timedelta(minutes=rng.randint(1, 9))
        story.emit(
            "member_joined",
            group,
            at,
            member=admin.ref(),
            inviter=group.owner.ref(),
            scene="invite",
        )

    joined: list[Person] = []
    for life in sorted(lives, key=lambda life: life.times[0]):
        _join(story, group, life, joined)
        joined.append(life.person)
    for life in lives:
        _talk(story, group, life, lives)

    # The admins' announcements, one an evening.
    for day in range(1, 8):
        at = datetime.combine(story.end.date() - timedelta(days=day), clock(19, 55), TZ)
        if created < at < story.end:
            text = rng.choice(ANNOUNCEMENTS).format(p=rng.choice(group.products))
            story.say(group, rng.choice(group.admins), at, text)


def _join(story: Story, group: Group, life: Life, earlier: list[Person]) -> None:
    rng = story.rng
    draw = rng.random()
    fields: Body = {"member": life.person.ref()}
    if life.spammer:
        fields |= {"scene": "qr"}
    elif earlier and draw < 0.35:
        fields |= {"scene": "invite", "inviter": rng.choice(earlier).ref()}
    elif draw < 0.7:
        fields |= {"scene": "qr"}
    else:
        fields |= {"scene": "livecode", "livecode": LIVECODE, "channel": rng.choice(CHANNELS)}
    story.emit("member_joined", group, life.times[0], **fields)


def _talk(story: Story, group: Group, life: Life, others: list[Life]) -> None:
    """What the member says and buys after joining; a spammer posts ads instead."""
    rng, who = story.rng, life.person
    last = life.times[0]
    if life.spammer:
        for at in life.times[1:]:
            last = max(last, _advertise(story, group, who, at))
        if life.kicked:
            admin = rng.choice(group.admins)
            warned = story.later(last, 30, 300)
            story.say(group, admin, warned, f"@{who.name} 群内禁止发广告", [who.id])
            at = story.later(warned, 30, 600)
            witnesses = [o.person for o in others if not o.spammer and o.times[0] < last]
            if witnesses:
                reaction = story.later(last, 10, 600)
                story.say(group, rng.choice(witnesses), reaction, rng.choice(SPAM_REACTIONS))
                at = max(at, story.later(reaction, 30, 300))
            story.emit(
                "member_left", group, at, member=who.ref(), reason="kicked", actor=admin.ref()
            )
        return
    checkin_weight = 30 if group.theme in CHECKIN_THEMES else 12
    for i, at in enumerate(life.times[1:]):
        if life.abusive and i == 0:
            story.say(group, who, at, rng.choice(ABUSE))
            continue
        kind = rng.choices(
            ("chat", "greeting", "question", "checkin", "thanks", "image", "link", "order"),
            weights=(30, 8, 14, checkin_weight, 6, 8, 3, 1),
        )[0]
        product = rng.choice(group.products)
        if kind == "question":
            last = max(last, _ask(story, group, who, at, product))
        elif kind == "image":
            message: Body = picture_message(story.next_id("m"), photo(rng.randrange(120, 256, 27)))
            story.emit("message_posted", group, at, member=who.ref(), message=message)
        elif kind == "link":
            url = f"https://mp.weixin.qq.com/s/demo{rng.randrange(10**6)}"
            message = {
                "id": story.next_id("m"),
                "kind": "link",
                "text": f"分享一篇{product}测评 {url}",
                "title": f"{product}真实测评",
                "urls": [url],
            }
            story.emit("message_posted", group, at, member=who.ref(), message=message)
        elif kind == "order":
            last = max(last, _buy(story, group, who, at))
        else:
            pool = {"chat": CHAT, "greeting": GREETINGS, "checkin": CHECKINS, "thanks": THANKS}
            story.say(group, who, at, rng.choice(pool[kind]))
        last = max(last, at)
    if life.quits:
        left = story.later(last, 600, 1500)
        story.emit("member_left", group, left, member=who.ref(), reason="quit")


def _ask(story: Story, group: Group, who: Person, at: datetime, product: str) -> datetime:
    """A product question; an admin usually answers, the asker thanks them and may buy."""
    rng = story.rng
    story.say(group, who, at, rng.choice(QUESTIONS).format(p=product))
    if rng.random() > 0.7:
        return at
    answered = story.later(at, 60, 900)
    answer = rng.choice(ANSWERS).format(p=product)
    story.say(group, rng.choice(group.admins), answered, f"@{who.name} {answer}", [who.id])
    last = answered
    if rng.random() < 0.4:
        last = story.later(answered, 30, 600)
        story.say(group, who, last, rng.choice(THANKS))
    if rng.random() < 0.25:
        last = max(last, _buy(story, group, who, story.later(answered, 120, 2 * 3600)))
    return last


def _buy(story: Story, group: Group, who: Person, at: datetime) -> datetime:
    rng = story.rng
    amount = rng.choice(PRICES)
    if rng.random() < 0.4:
        coupon = {"id": story.next_id("c"), "value": 20.0, "currency": "CNY"}
        story.emit("coupon_redeemed", group, at, member=who.ref(), coupon=coupon)
        amount = round(amount - 20.0, 2) if amount > 20.0 else amount
    order = {"id": story.next_id("o"), "amount": amount, "currency": "CNY"}
    story.emit("order_placed", group, at, member=who.ref(), order=order)
    return at


def _advertise(story: Story, group: Group, who: Person, at: datetime) -> datetime:
    rng = story.rng
    draw = rng.random()
    if draw < 0.2:
        card = f"https://u.wechat.com/E{rng.randrange(10**9):09d}fuli"
        message = picture_message(story.next_id("m"), qr_picture(card))
        story.emit("message_posted", group, at, member=who.ref(), message=message)
    elif draw < 0.45:
        url = f"http://{rng.choice(AD_DOMAINS)}/r?id={rng.randrange(1000, 9999)}"
        message = {
            "id": story.next_id("m"),
            "kind": "link",
            "text": f"内部渠道，低价秒杀→ {url}",
            "title": "限时福利",
            "urls": [url],
        }
        story.emit("message_posted", group, at, member=who.ref(), message=message)
    else:
        handle = f"fl{rng.randrange(1000, 9999)}"
        story.say(group, who, at, rng.choice(ADS).format(h=handle))
    return at


def _member_renames(story: Story, group: Group, lives: list[Life]) -> None:
    """A member renames the group; the operator later renames it back (see the actions)."""
    rng = story.rng
    candidates = [life for life in lives if not life.spammer and not life.quits]
    if not candidates:
        return
    life = rng.choice(candidates)
    at = max(moment(rng, story.end), story.later(life.times[0], 300, 300))
    actor = life.person.ref()
    story.emit("group_updated", group, at, group={"name": "吃瓜群🍉"}, actor=actor)
    story.say(group, group.admins[0], story.later(at, 60, 600), "请不要随便改群名哦")


def _owner_renames(story: Story, group: Group) -> None:
    at = moment(story.rng, story.end)
    name = f"{group.name}·会员专享"
    story.emit("group_updated", group, at, group={"name": name}, actor=group.owner.ref())
    group.name = name


def _operator_actions(
    story: Story, plan: list[Group], lives: dict[str, list[Life]], renamed: Group
) -> None:
    """A welcome in every group, one spammer kicked and their first ad deleted, the renamed
    group's name restored, a link card and a red packet."""
    for group in plan:
        story.act(
            "send_text",
            group,
            text=f"欢迎新朋友来到「{group.name}」🎉 每天发送“签到”领积分，晚上8点有福利秒杀～",
        )
    spam_group = plan[0]
    spammer = next(life for life in lives[spam_group.id] if life.spammer)
    ad = next(
        body
        for _, _, body in story.events
        if body["type"] == "message_posted" and body["member"]["id"] == spammer.person.id
    )
    story.act("delete_message", spam_group, message_id=ad["message"]["id"])
    story.act("kick_member", spam_group, member_id=spammer.person.id, reason="发广告")
    story.act("rename_group", renamed, name=renamed.name)
    themed = plan[1 % len(plan)]
    story.act(
        "send_link_card",
        themed,
        title="本周福利清单",
        url="https://example.com/shequn/weekly",
        description=f"{themed.name}专属优惠，先到先得",
    )
    story.act("send_red_packet", spam_group, amount=8.88, count=10, greeting="感谢大家一周的陪伴")
