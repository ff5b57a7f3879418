"""The demo's people, groups and words: constants, the event and message constructors, the
pictures (QR codes among them) and the names. Plain code, no I/O."""

from __future__ import annotations

import base64
import functools
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import zxingcpp
from PIL import Image

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
