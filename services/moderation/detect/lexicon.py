"""zh-CN starter lists a new tenant's default ruleset begins with; every one is editable."""

from __future__ import annotations

# Solicitations that move a conversation out of the group, and typical spam phrases.
AD_PHRASES: tuple[str, ...] = (
    "加微信", "加微", "加v", "加vx", "加wx", "加我微信", "加我v", "v信", "vx", "wx", "微信号",
    "薇信", "威信", "徽信", "危信", "卫星号", "加卫星", "绿泡泡", "vx号", "wx号", "weixin",
    "wechat", "jiaweixin", "weixinhao", "jiav", "jiawo", "jiawei",
    "私聊", "私信我", "私我", "加我好友", "加好友", "扫码加", "扫码进群", "进群领取",
    "招兼职", "兼职刷单", "兼职日结", "刷单", "日赚", "日结", "日入", "代理招募", "招代理",
    "免费领取", "点击领取", "点击链接", "低价代购", "网赚", "返利", "返现", "博彩", "彩票",
    "贷款", "下款", "套现", "无抵押", "扣扣", "企鹅号", "qq群", "加q", "q群", "加扣", "淘口令",
    "jianzhi", "shuadan", "rizhuan", "dailizhaomu",
)  # fmt: skip

# A starter abuse lexicon (辱骂). Entries beginning with "=" match only a whole message.
ABUSE_WORDS: tuple[str, ...] = (
    "傻逼", "傻b", "傻x", "傻叉", "傻缺", "傻子", "煞笔", "沙比", "shabi", "sb", "2b", "二逼",
    "脑残", "naocan", "nc", "脑瘫", "弱智", "智障", "zz", "白痴", "低能", "蠢货", "蠢猪", "蠢得",
    "废物", "fw", "人渣", "败类", "垃圾东西", "垃圾客服", "辣鸡", "lj客服", "全家都是垃圾",
    "去死吧", "你去死", "不得好死", "死全家", "死妈", "你妈逼", "他妈的", "你妹的", "操你",
    "草你", "艹你", "草泥马", "你麻痹", "nmb", "nmsl", "cnm", "tmd", "尼玛", "吃屎",
    "滚蛋", "滚出去", "滚犊子", "滚你", "给老子滚", "=滚", "gun出去",
    "贱人", "贱货", "婊子", "狗东西", "狗日的", "狗比", "王八蛋", "畜生", "杂种", "龟儿子",
    "瓜娃子", "憨批", "穷逼", "逼逼", "不要脸", "丢人现眼", "你是猪", "猪脑子", "有毛病",
    "脑子进水", "脑子被门夹", "算哪根葱", "你爹我", "骗子公司", "死骗子", "骗纸", "神经病",
    "有病吧", "笨蛋",
)  # fmt: skip
# Top-level domains that a bare domain in text ends with ("xx.top", "abc.cn/x").
TLDS: tuple[str, ...] = (
    "com", "cn", "net", "org", "top", "xyz", "cc", "vip", "shop", "club", "site", "online",
    "info", "me", "io", "co", "app", "link", "ltd", "store", "tech", "fun", "icu", "wang",
    "ink", "ren", "pro", "live", "tv", "asia", "biz", "hk", "tw", "ly", "gl",
)  # fmt: skip
