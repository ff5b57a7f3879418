"""`shequn demo`: a week in the life of a tenant on the simulated platform, sent to a running dev
stack through the public HTTP APIs.

Two halves. The scenario builder (`build_scenario` and the small event constructors) is plain
code: a seed and "now" in, event and action bodies out, no I/O, so a test can check every event
against ingestion's own validator. The story is the 7 days before today (Asia/Shanghai): all of
it is in the past, and it is the same story whatever the time of day. The sender (`run_demo`)
posts the events in batches of 500 with a few requests in flight, waits until the pipeline has
counted them, asks for a few operator actions, dedupes the 福利 series (a dry run, then the plan
applied) and prints where to look.

Every id follows from the seed and a counter, so running the demo again with the same seed sends
the same events, which ingestion absorbs as duplicates, and the same action ids, which delivery
answers from its ledger instead of acting twice; its dedupe dry run finds nobody left to remove.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from random import Random
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import zxingcpp
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

Body = dict[str, Any]

TZ = ZoneInfo("Asia/Shanghai")
BATCH = 500
CONCURRENCY = 3
WAIT_SECONDS = 60.0
LIVECODE = "lc-spring"
CHANNELS = ("store-A", "store-B", "douyin")
# The brand's own domains: staff share articles and the shop (whitelisted before sending).
WHITELIST = ("mp.weixin.qq.com", "example.com")

# Waking hours in Asia/Shanghai, with a lunch bump and the evening peak.
HOUR_WEIGHTS = {
    7: 2, 8: 4, 9: 5, 10: 5, 11: 5, 12: 7, 13: 5, 14: 4, 15: 4,
    16: 4, 17: 5, 18: 6, 19: 9, 20: 12, 21: 12, 22: 8, 23: 3,
}  # fmt: skip

THEMES: dict[str, tuple[str, ...]] = {
    "福利": ("洗衣液", "抽纸", "零食大礼包", "奶粉", "电动牙刷", "保温杯"),
    "宝妈交流群": ("奶粉", "纸尿裤", "婴儿湿巾", "辅食机", "儿童绘本"),
    "数码发烧友": ("蓝牙耳机", "充电宝", "机械键盘", "平板", "智能手表"),
    "读书打卡群": ("年度书单", "Kindle", "《人类简史》", "读书会门票"),
    "健身打卡营": ("蛋白粉", "瑜伽垫", "筋膜枪", "跳绳"),
    "美食探店群": ("火锅券", "奶茶券", "生日蛋糕", "小龙虾"),
}
THEMED_NAMES = tuple(name for name in THEMES if name != "福利")
# Group series (tags): the 福利 groups are the series the demo dedupes; the themed groups are
# another, so a member of a 福利 group and a themed one is in two series and keeps both.
SERIES = {"福利": "福利群"}
OTHER_SERIES = "兴趣群"
CHECKIN_THEMES = {"读书打卡群", "健身打卡营"}
STAFF_NAMES = (
    "运营-小美", "店长阿强", "客服小雨", "群管家Lucy",
    "助理小周", "运营-大白", "客服阿May", "店长Vivian",
)  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = "伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚英华玲"
LATIN = ("Lily", "Coco", "Tony", "Kevin", "Mia", "Sunny", "Amy", "Leo", "Echo", "Jason")
KIDS = ("乐乐", "豆豆", "朵朵", "果果", "糖糖", "小宝", "天天", "安安")
NAME_EMOJI = ("🌸", "🍀", "✨", "🌈", "🐱", "")

GREETINGS = ("大家好", "大家好～新人报到", "早上好☀️", "晚安🌙", "哈喽", "新人求关照🙏", "中午好")
CHAT = (
    "哈哈哈", "👍", "收到", "同问", "太划算了", "已下单", "好评👍", "谢谢分享", "今天天气真好",
    "有人一起拼单吗", "这个价格可以啊", "😂😂😂", "昨天的直播错过了", "求链接", "蹲一个",
    "我也买了，质量不错", "下次活动是什么时候", "🌹🌹🌹", "冲冲冲", "已收藏",
)  # fmt: skip
QUESTIONS = (
    "这个{p}有优惠吗",
    "{p}还有货吗？",
    "请问{p}怎么买",
    "{p}什么时候发货",
    "{p}能用优惠券吗",
    "有人买过{p}吗，好用吗",
)
ANSWERS = (
    "有的，{p}今晚8点直播间满199减30",
    "还有货，下单后48小时内发货",
    "可以用，下单时选「满减券」就行",
    "已私聊你～",
    "群公告里有链接哦",
    "今天下单{p}送小样🎁",
)
THANKS = ("谢谢！", "好的谢谢🙏", "感谢群主", "明白了，谢谢", "收到，谢谢～")
CHECKINS = ("签到", "打卡", "签到", "打卡")
ANNOUNCEMENTS = (
    "今晚8点福利秒杀开始啦🎉 {p}限量50份",
    "【群公告】禁止发广告，违者踢群",
    "本周{p}团购还剩最后一天，需要的抓紧～",
    "早安☀️ 今日签到送积分，发送“签到”即可",
)
ADS = (
    "加V了解更多优惠：{h}",
    "vx: {h} 免费领取",
    "加 微 信 领福利，名额有限",
    "兼职刷单日结300+，私聊我",
    "威❤：{h} 进内部群",
)
AD_DOMAINS = ("hongbao-8866.top", "quick-fuli.xyz", "vip-lingqu.cc")
ABUSE = ("你有病吧", "滚", "傻X", "什么垃圾群，骗子！", "管理员是死人吗")
SPAM_REACTIONS = ("又是广告", "管理员快踢了他", "举报了")
PRICES = (29.9, 39.9, 59.9, 99.0, 128.0, 199.0, 299.0)


# --- the scenario: plain functions, no I/O ----------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    role: str = "member"

    def ref(self) -> Body:
        return {"id": self.id, "name": self.name, "role": self.role}


@dataclass
class Group:
    id: str
    name: str
    theme: str
    owner: Person
    admins: list[Person]
    series: str

    @property
    def products(self) -> tuple[str, ...]:
        return THEMES[self.theme]


@dataclass
class Scenario:
    seed: int
    now: datetime
    groups: list[Group]
    events: list[Body]  # in order of occurred_at
    actions: list[Body]
    focus: list[Group]  # the groups the summary points at; the first is waited for
    series: str  # the tag of the 福利 groups, which the demo dedupes


def iso(at: datetime) -> str:
    return at.astimezone(TZ).isoformat(timespec="seconds")


def event(event_id: str, kind: str, group: Group, at: datetime, /, **fields: Any) -> Body:
    return {
        "event_id": event_id,
        "type": kind,
        "group_id": group.id,
        "platform": "sim",
        "occurred_at": iso(at),
        **fields,
    }


def text_message(message_id: str, text: str, mentions: list[str] | None = None) -> Body:
    return {"id": message_id, "kind": "text", "text": text, "mentions": mentions or []}


def picture_message(message_id: str, url: str) -> Body:
    return {"id": message_id, "kind": "image", "media_url": url}


@functools.cache
def photo(shade: int) -> str:
    """A small photo as a data: URL (the sim platform has no media server); a few are reused,
    as pictures are in groups."""
    image = Image.linear_gradient("L").resize((96, 96)).point(lambda v: v * shade // 255)
    return _data_url(image)


def qr_picture(payload: str) -> str:
    """A QR code as a data: URL, the way ad accounts post their WeChat card."""
    code = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode).to_image(scale=4)
    return _data_url(Image.fromarray(code))


def _data_url(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return f"data:image/png;base64,{base64.b64encode(out.getvalue()).decode()}"


def week_end(now: datetime) -> datetime:
    """The story is the 7 days before today's midnight in Asia/Shanghai: all of it in the past,
    and the same story whatever the time of day the demo runs."""
    return datetime.combine(now.astimezone(TZ).date(), clock(0), TZ)


def moment(rng: Random, end: datetime) -> datetime:
    """A time in the 7 days before `end` (a midnight), in waking hours with an evening peak."""
    days_back = 1 + rng.randrange(7)
    hour = rng.choices(list(HOUR_WEIGHTS), weights=list(HOUR_WEIGHTS.values()))[0]
    second = rng.randrange(3600)
    day = end.date() - timedelta(days=days_back)
    return datetime.combine(day, clock(hour), TZ) + timedelta(seconds=second)


def nickname(rng: Random, theme: str) -> str:
    style = rng.randrange(5)
    if theme == "宝妈交流群" and style < 2:
        name = rng.choice(KIDS) + "妈"
    elif style == 0:
        name = "小" + rng.choice(GIVEN)
    elif style == 1:
        name = "阿" + rng.choice(GIVEN)
    elif style == 2:
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
    elif style == 3:
        name = rng.choice(LATIN)
    else:
        name = rng.choice(SURNAMES) + rng.choice(("姐", "哥", "老师", "同学"))
    return name + rng.choice(NAME_EMOJI)


def series_tag(seed: int, theme: str) -> str:
    """A series per seed, so that the stories of other seeds on the same stack stay out of this
    one's dedupe."""
    return f"demo-{seed}-{SERIES.get(theme, OTHER_SERIES)}"


def group_names(count: int) -> list[tuple[str, str]]:
    """(name, theme) pairs: mostly 福利N群, every third a themed group while there are some."""
    names: list[tuple[str, str]] = []
    themed = iter(THEMED_NAMES)
    welfare = 0
    for i in range(count):
        name = next(themed, None) if i % 3 == 1 else None
        if name is None:
            welfare += 1
            names.append((f"福利{welfare}群", "福利"))
        else:
            names.append((name, name))
    return names


@dataclass
class _Life:
    """One member's plan in one group before it becomes events."""

    person: Person
    times: list[datetime]  # sorted; the first is the join
    spammer: bool = False
    kicked: bool = False  # by an admin, in the events (one spammer is left to the operator)
    abusive: bool = False
    quits: bool = False


@dataclass
class _Story:
    seed: int
    rng: Random
    end: datetime
    events: list[tuple[datetime, int, Body]] = field(default_factory=list)
    actions: list[Body] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)

    def next_id(self, kind: str = "") -> str:
        self.counters[kind] += 1
        return f"demo-{self.seed}-{kind}{self.counters[kind]}"

    def emit(self, kind: str, group: Group, at: datetime, /, **fields: Any) -> datetime:
        body = event(self.next_id(), kind, group, at, **fields)
        self.events.append((at, len(self.events), body))
        return at

    def say(
        self, group: Group, who: Person, at: datetime, text: str, mentions: list[str] | None = None
    ) -> str:
        message_id = self.next_id("m")
        message = text_message(message_id, text, mentions)
        self.emit("message_posted", group, at, member=who.ref(), message=message)
        return message_id

    def act(self, kind: str, group: Group, **fields: Any) -> Body:
        body = {"type": kind, "group_id": group.id, "platform": "sim", **fields}
        body["action_id"] = self.next_id("a")
        self.actions.append(body)
        return body

    def later(self, at: datetime, low: int, high: int) -> datetime:
        """`at` plus low..high seconds, but within the week (a reply to a late-night question
        does not spill into today, which may not have come that far yet)."""
        return min(
            at + timedelta(seconds=self.rng.randint(low, high)), self.end - timedelta(seconds=60)
        )


def _after_join(story: _Story, chances: int, join: datetime | None = None) -> list[datetime]:
    """A join in the week (at `join` if given) and the moments of the member's messages: of
    `chances` moments in the week, those after the join (so that late joiners say less, as they
    do)."""
    join = join or moment(story.rng, story.end)
    said = (moment(story.rng, story.end) for _ in range(chances))
    return [join, *sorted(at for at in said if at > join)]


def _burst(story: _Story, ads: int) -> list[datetime]:
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
    story = _Story(seed, rng, week_end(now))

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

    lives: dict[str, list[_Life]] = {g.id: [] for g in plan}
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
                lives[group.id].append(_Life(person, _after_join(story, rng.randint(1, 6), join)))
            continue
        spammer, abusive = n < spammers, spammers <= n < spammers + abusers
        level = rng.choices((0, 1, 2, 3), weights=(25, 30, 30, 15))[0]
        chances = (0, rng.randint(2, 8), rng.randint(10, 30), rng.randint(32, 80))[level]
        times = _burst(story, rng.randint(2, 4)) if spammer else _after_join(story, chances)
        if abusive and len(times) == 1:
            times.append(story.later(times[0], 600, 3600))
        quits = not spammer and rng.random() < 0.03
        lives[home.id].append(_Life(person, times, spammer, spammer and n > 0, abusive, quits))
        if len(plan) > 1 and not spammer and rng.random() < 0.05:
            other = rng.choice([g for g in plan if g is not home])  # a second, quieter group
            lives[other.id].append(_Life(person, _after_join(story, rng.randint(1, 6))))

    for group in plan:
        _group_life(story, group, lives[group.id])

    renamed = plan[2 % len(plan)]
    _member_renames(story, renamed, lives[renamed.id])
    if len(plan) > 3:
        _owner_renames(story, plan[3])
    _operator_actions(story, plan, lives, renamed)

    story.events.sort(key=lambda item: (item[0], item[1]))
    focus = list({g.id: g for g in (plan[0], plan[1 % len(plan)], renamed)}.values())
    events = [body for _, _, body in story.events]
    return Scenario(seed, now, plan, events, story.actions, focus, series_tag(seed, "福利"))


def _group_life(story: _Story, group: Group, lives: list[_Life]) -> None:
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


def _join(story: _Story, group: Group, life: _Life, earlier: list[Person]) -> None:
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


def _talk(story: _Story, group: Group, life: _Life, others: list[_Life]) -> None:
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


def _ask(story: _Story, group: Group, who: Person, at: datetime, product: str) -> datetime:
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


def _buy(story: _Story, group: Group, who: Person, at: datetime) -> datetime:
    rng = story.rng
    amount = rng.choice(PRICES)
    if rng.random() < 0.4:
        coupon = {"id": story.next_id("c"), "value": 20.0, "currency": "CNY"}
        story.emit("coupon_redeemed", group, at, member=who.ref(), coupon=coupon)
        amount = round(amount - 20.0, 2) if amount > 20.0 else amount
    order = {"id": story.next_id("o"), "amount": amount, "currency": "CNY"}
    story.emit("order_placed", group, at, member=who.ref(), order=order)
    return at


def _advertise(story: _Story, group: Group, who: Person, at: datetime) -> datetime:
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


def _member_renames(story: _Story, group: Group, lives: list[_Life]) -> None:
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


def _owner_renames(story: _Story, group: Group) -> None:
    at = moment(story.rng, story.end)
    name = f"{group.name}·会员专享"
    story.emit("group_updated", group, at, group={"name": name}, actor=group.owner.ref())
    group.name = name


def _operator_actions(
    story: _Story, plan: list[Group], lives: dict[str, list[_Life]], renamed: Group
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


# --- sending: the HTTP half ---------------------------------------------------------------------


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

    async def _post(self, url: str, body: Body, expected: int = 202) -> Body:
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
        answer = await self._post(self.stack.ingestion + "/v1/events", {"events": batch})
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
        current = await self._get(url, {})
        current["url_whitelist"] = sorted(set(current["url_whitelist"]) | set(WHITELIST))
        strict = {"invite_policy": True, "rename_lock": True}
        for target, body in (
            (url, current),
            (f"{self.stack.moderation}/v1/rulesets/groups/{strict_group}", strict),
        ):
            response = await self.http.put(target, json=body, headers=self.headers)
            if response.status_code != 200:
                raise DemoError(
                    f"PUT {target} → HTTP {response.status_code}: {response.text[:300]}"
                )

    async def send_action(self, action: Body) -> None:
        await self._post(self.stack.ingestion + "/v1/actions", action)

    async def _get(self, url: str, params: dict[str, Any]) -> Body:
        response = await self.http.get(url, params=params, headers=self.headers)
        response.raise_for_status()
        answer: Body = response.json()
        return answer

    async def messages_counted(self, group_id: str, start: date, end: date) -> int:
        url = f"{self.stack.analytics}/v1/stats/groups/{group_id}/daily"
        days = await self._get(url, {"from": start.isoformat(), "to": end.isoformat()})
        return sum(int(day["messages"]) for day in days["days"])

    async def timeline(self, group_id: str) -> list[dict[str, Any]]:
        url = f"{self.stack.ingestion}/v1/groups/{group_id}/timeline"
        items: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"limit": 500} | ({"after": after} if after else {})
            page = await self._get(url, params)
            items += page["items"]
            after = page["next"]
            if not after:
                return items

    async def timeline_events(self, group_id: str) -> int:
        return sum(1 for item in await self.timeline(group_id) if item["kind"] == "event")

    async def decisions(self) -> list[dict[str, Any]]:
        page = await self._get(f"{self.stack.moderation}/v1/moderation/decisions", {"limit": 500})
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
        return await self._post(url, {"series": series}, expected=201)

    async def apply_dedupe(self, plan_id: str) -> Body:
        url = f"{self.stack.moderation}/v1/dedupe/plans/{plan_id}/apply"
        return await self._post(url, {}, expected=200)


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
