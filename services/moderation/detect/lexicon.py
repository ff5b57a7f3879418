"""zh-CN starter lists a new tenant's default ruleset begins with; every one is editable."""

from __future__ import annotations

# Solicitations that move a conversation out of the group, and typical spam phrases.
AD_PHRASES: tuple[str, ...] = (
    "加微信", "加微", "加v", "加vx", "加wx", "加我微信", "加我v", "v信", "vx", "wx", "微信号",
    "薇信", "威信", "徽信", "危信", "vx号", "wx号", "weixin", "wechat", "jiaweixin",
    "私聊", "私信我", "私我", "加我好友", "加好友", "扫码加", "扫码进群", "进群领取",
    "兼职", "刷单", "日赚", "日结", "代理招募", "招代理", "免费领取", "点击领取", "点击链接",
    "低价代购", "网赚", "返利", "博彩", "彩票", "贷款", "套现", "无抵押", "扣扣", "企鹅号",
    "qq群", "加q", "q群",
)  # fmt: skip

# A starter abuse lexicon (辱骂). Entries beginning with "=" match only a whole message.
ABUSE_WORDS: tuple[str, ...] = (
    "傻逼", "傻b", "煞笔", "沙比", "sb", "脑残", "弱智", "智障", "白痴", "蠢货", "蠢猪",
    "废物", "垃圾东西", "去死", "死全家", "你妈的", "你妈逼", "他妈的", "操你", "草你",
    "滚蛋", "=滚", "贱人", "贱货", "婊子", "狗东西", "狗日的", "王八蛋", "畜生", "杂种",
    "骗子公司", "垃圾客服", "神经病", "有病吧", "nmsl", "cnm", "tmd", "尼玛",
)  # fmt: skip

# Top-level domains that a bare domain in text ends with ("xx.top", "abc.cn/x").
TLDS: tuple[str, ...] = (
    "com", "cn", "net", "org", "top", "xyz", "cc", "vip", "shop", "club", "site", "online",
    "info", "me", "io", "co", "app", "link", "ltd", "store", "tech", "fun", "icu", "wang",
    "ink", "ren", "pro", "live", "tv", "asia", "biz", "hk", "tw", "ly", "gl",
)  # fmt: skip
