"""Deterministic generator of realistic raw CRM exports: customers, orders, surveys, complaints.

Everything is drawn with vectorised numpy from one seed and rendered/written with Polars, one
file per UTC day and kind. The statistical model and the file layout are described in
docs/sample-data.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

DAY_S = 86_400

# --- Countries, currencies ----------------------------------------------------------------


@dataclass(frozen=True)
class Country:
    code: str
    weight: float
    utc_offset_h: int
    currency: str
    cities: tuple[str, ...]


COUNTRIES = (
    Country("CN", 0.55, 8, "CNY", ("Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu",
                                   "Wuhan", "Nanjing", "Xi'an", "Chongqing", "Suzhou", "Tianjin")),
    Country("US", 0.15, -5, "USD", ("New York", "Los Angeles", "Chicago", "Houston", "San Francisco",
                                    "Seattle", "Boston", "Miami", "Austin", "Atlanta")),
    Country("GB", 0.08, 0, "GBP", ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol",
                                   "Edinburgh", "Liverpool")),
    Country("DE", 0.08, 1, "EUR", ("Berlin", "Munich", "Hamburg", "Frankfurt", "Cologne", "Stuttgart",
                                   "Düsseldorf", "Leipzig")),
    Country("FR", 0.07, 1, "EUR", ("Paris", "Lyon", "Marseille", "Toulouse", "Nice", "Bordeaux", "Lille",
                                   "Nantes")),
    Country("JP", 0.07, 9, "JPY", ("Tokyo", "Osaka", "Yokohama", "Nagoya", "Sapporo", "Fukuoka", "Kyoto",
                                   "Kobe")),
)
CURRENCIES = ("CNY", "USD", "GBP", "EUR", "JPY")
# Catalogue prices are set in USD and converted at these fixed rates (also usable to compare revenue).
FX_PER_USD = {"CNY": 7.2, "USD": 1.0, "GBP": 0.79, "EUR": 0.92, "JPY": 150.0}
CURRENCY_DECIMALS = {"CNY": 2, "USD": 2, "GBP": 2, "EUR": 2, "JPY": 0}

_CN = [c.code for c in COUNTRIES].index("CN")
_COUNTRY_P = np.array([c.weight for c in COUNTRIES])
_OFFSET_S = np.array([c.utc_offset_h * 3600 for c in COUNTRIES], dtype=np.int64)
_OFFSET_TEXT = tuple(f"{'+' if c.utc_offset_h >= 0 else '-'}{abs(c.utc_offset_h):02d}:00" for c in COUNTRIES)
_COUNTRY_CURRENCY = np.array([CURRENCIES.index(c.currency) for c in COUNTRIES], dtype=np.uint8)

# --- Behavioural model ----------------------------------------------------------------------

# BG/NBD: purchase rate per day ~ Gamma(r, scale 1/alpha); dropout after each purchase ~ Beta(a, b).
# Calibrated so an average customer places ~4.7 orders (~10 lines) in a 365-day window.
BGNBD_R, BGNBD_ALPHA, BGNBD_A, BGNBD_B = 0.75, 14.0, 2.0, 25.0
PRE_WINDOW_SHARE = 0.4
PRE_WINDOW_DAYS = 730  # pre-window sign-ups are spread uniformly over the two years before
SPEND_SHAPE = 2.0  # per-customer basket multiplier ~ Gamma(2, scale 1/2), mean 1

# Local-time activity by hour: quiet nights, lunch bump, evening peak.
_HOURLY_ACTIVITY = np.array([0.6, 0.35, 0.2, 0.15, 0.12, 0.15, 0.3, 0.6, 1.0, 1.3, 1.5, 1.6,
                             1.7, 1.6, 1.5, 1.5, 1.5, 1.6, 1.8, 2.1, 2.4, 2.5, 2.0, 1.2])
_ACTIVITY_CDF = np.concatenate(([0.0], np.cumsum(_HOURLY_ACTIVITY))) / _HOURLY_ACTIVITY.sum()
_HOUR_GRID = np.arange(25) / 24

CATEGORIES = ("electronics", "apparel", "home", "beauty", "books", "grocery", "toys", "sports", "jewelry", "health")
_CATEGORY_P = np.array([0.12, 0.18, 0.12, 0.12, 0.07, 0.15, 0.06, 0.07, 0.03, 0.08])
_CATEGORY_MEDIAN_USD = np.array([180.0, 35.0, 45.0, 25.0, 15.0, 8.0, 25.0, 40.0, 150.0, 20.0])
_PRODUCTS_PER_CATEGORY = 400
_FAVOURITE_SHARE = 0.4  # share of lines drawn from the customer's favourite category

_LINES_PER_ORDER_P = np.array([0.42, 0.26, 0.16, 0.10, 0.06])
ORDER_CHANNELS = ("web", "app", "store", "marketplace")
_ORDER_CHANNEL_P = np.array([0.35, 0.40, 0.10, 0.15])
_PREFERRED_CHANNEL_SHARE = 0.7
ORDER_STATUSES = ("completed", "cancelled", "returned")
_COMPLETED, _CANCELLED, _RETURNED = 0, 1, 2
# Cancellation is per order; returns are whole-order or per line, ~4% of lines overall.
_CANCEL_P, _WHOLE_RETURN_P, _LINE_RETURN_P = 0.03, 0.025, 0.016

# --- Surveys ------------------------------------------------------------------------------

_SURVEY_P = 0.0825  # of non-cancelled orders, i.e. ~8% of all orders
SERVQUAL_DIMENSIONS = (("tangibles", 4), ("reliability", 5), ("responsiveness", 4), ("assurance", 4), ("empathy", 5))
SERVQUAL_ITEMS = tuple(f"{d}_{i}" for d, k in SERVQUAL_DIMENSIONS for i in range(1, k + 1))
_ITEM_DIMENSION = np.repeat(np.arange(len(SERVQUAL_DIMENSIONS)), [k for _, k in SERVQUAL_DIMENSIONS])
_EXPECTATION_MEAN = np.array([5.6, 6.1, 5.9, 5.8, 5.5])
_SERVQUAL_GAP = np.array([-0.3, -1.1, -0.9, -0.5, -0.7])  # perception minus expectation
_RETURN_PENALTY = 0.8  # perceived quality drop after a return
_COMMENT_P, _EXTREME_COMMENT_P, _CHINESE_COMMENT_P = 0.3, 0.5, 0.55
# Indexed [sentiment][language]; sentiment 0 positive, 1 neutral, 2 negative; language 0 en, 1 zh.
COMMENTS = (
    (("Fast delivery, great quality.", "Exactly as described. Would buy again!",
      'The "premium" packaging was a nice touch.', "Love it.\nMy second order this month.",
      "Great service, friendly staff, quick refund on a missing item."),
     ("物流很快，包装完好", "质量很好，会回购", "客服态度好,解决问题很及时", "东西不错\n下次还买", "性价比高，推荐！")),
    (("OK.", "Product fine, delivery a bit slow.", "Does the job, nothing special.",
      'Size runs small; had to order an "L" instead of "M".', "Average experience.\nApp checkout could be simpler."),
     ("还行吧", "一般般，和描述差不多", '包装有点简单,但"东西"没问题', "物流稍慢。\n商品本身还可以", "中规中矩")),
    (("Arrived late and the box was damaged.", 'Support said "wait 3-5 days", it has been two weeks.',
      "Wrong colour, wrong size, no apology.", "Item broke after one use.\nRequesting a refund.", "Never again."),
     ("发货太慢了，等了一个星期", "质量很差，用了两天就坏了", '客服说"马上处理",结果三天没回复', "颜色和图片不一样\n申请退货",
      "不会再买了")),
)
_ANSWER_COLUMNS = tuple(f"{side}_{item}" for side in ("exp", "per") for item in SERVQUAL_ITEMS)

# --- Complaints ---------------------------------------------------------------------------

COMPLAINT_CATEGORIES = ("product_quality", "delivery_delay", "billing", "service_attitude", "returns_refunds",
                        "website_app")
# Ticket probability and category mix by order outcome: completed, cancelled, returned (any line).
_COMPLAINT_P = np.array([0.018, 0.10, 0.25])
_COMPLAINT_CATEGORY_P = np.array([[0.30, 0.30, 0.10, 0.10, 0.05, 0.15],
                                  [0.05, 0.15, 0.40, 0.10, 0.05, 0.25],
                                  [0.30, 0.05, 0.05, 0.05, 0.55, 0.00]])
SEVERITIES = ("low", "medium", "high", "critical")
_SEVERITY_P = np.array([0.35, 0.40, 0.20, 0.05])
_FIRST_RESPONSE_MEDIAN_H = np.array([20.0, 8.0, 2.0, 0.5])
_RESOLUTION_MEDIAN_H = np.array([72.0, 48.0, 24.0, 8.0])  # after the first response
COMPLAINT_CHANNELS = ("phone", "email", "chat", "social", "store")
_COMPLAINT_CHANNEL_P = np.array([0.25, 0.25, 0.30, 0.10, 0.10])
_REOPENED_P, _NO_ORDER_REF_P, _NO_FIRST_RESPONSE_P, _CHINESE_DESCRIPTION_P = 0.08, 0.10, 0.03, 0.7
# Indexed [category][language].
DESCRIPTIONS = (
    (("Item arrived scratched", "Stopped working after two days", "Quality much worse than pictured"),
     ("收到的商品有划痕", "质量太差了，用了两天就坏了", "实物和图片差距很大")),
    (("Package still not delivered after a week", "Tracking has not updated in 3 days",
      "Courier left parcel at wrong address"),
     ("快递一周了还没到", "物流信息三天没有更新", "快递放错了地址")),
    (("Charged twice for the same order", "Invoice shows the wrong amount", "Coupon was not applied at checkout"),
     ("被重复扣款了", "发票金额不对", "优惠券没有抵扣")),
    (("Agent was rude on the phone", "Nobody answers the hotline", "Chat agent closed my conversation"),
     ("客服态度很差", "电话一直没人接", "在线客服直接结束了对话")),
    (("Refund not received yet", "Return request rejected without reason", "Return label never arrived"),
     ("退款还没到账", "退货申请被拒绝", "退货单一直没收到")),
    (("App crashes at checkout", "Cannot change delivery address", "Password reset email never arrives"),
     ("APP 支付页面一直闪退", "无法修改收货地址", "收不到重置密码的邮件")),
)

# --- People -------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    """Latin transliteration used in e-mail addresses (Müller -> Muller, O'Brien -> OBrien)."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if ch.isascii() and ch.isalpha())


@dataclass(frozen=True)
class _NamePools:
    family: tuple[tuple[str, str], ...]  # (as written natively, romanised ASCII)
    given: tuple[tuple[str, str], ...]
    family_first: bool  # order when written natively, and in e-mail addresses
    separator: str = " "
    native_share: float = 1.0  # the rest are written romanised as "Given Family"


def _latin(family: str, given: str) -> _NamePools:
    def pairs(names: str) -> tuple[tuple[str, str], ...]:
        return tuple((name, _ascii(name)) for name in names.split())

    return _NamePools(pairs(family), pairs(given), family_first=False)


_ENGLISH = _latin("Smith Johnson Williams Brown Jones Garcia Miller Davis Wilson Taylor Clarke Evans Walker Wright "
                  "Robinson Thompson O'Brien Hughes",
                  "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Emma Oliver "
                  "Olivia Harry Sophie Jack Amelia Thomas")
_NAMES = {
    "CN": _NamePools(
        tuple(zip("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐",
                  "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng Liang Xie "
                  "Song Tang".split())),
        tuple(zip("伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 浩然 子涵 欣怡 梓萱 宇轩 一诺 思远 晓明 建华 雨涵 "
                  "佳怡 俊杰".split(),
                  "Wei Fang Na Xiuying Min Jing Li Qiang Lei Jun Yang Yong Yan Jie Juan Tao Ming Chao Xiulan Xia Ping "
                  "Gang Haoran Zihan Xinyi Zixuan Yuxuan Yinuo Siyuan Xiaoming Jianhua Yuhan Jiayi Junjie".split())),
        family_first=True, separator="", native_share=0.85),
    "JP": _NamePools(
        tuple(zip("佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤".split(),
                  "Sato Suzuki Takahashi Tanaka Ito Watanabe Yamamoto Nakamura Kobayashi Kato".split())),
        tuple(zip("翔太 陽翔 蓮 大翔 結衣 陽菜 さくら 美咲 健太 愛".split(),
                  "Shota Haruto Ren Hiroto Yui Hina Sakura Misaki Kenta Ai".split())),
        family_first=True, native_share=0.75),
    "US": _ENGLISH,
    "GB": _ENGLISH,
    "DE": _latin("Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Schäfer",
                 "Lukas Leon Finn Jonas Anna Lea Hannah Mia Felix Sophie Maximilian Lena Jürgen Jörg"),
    "FR": _latin("Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Lefèvre Girard",
                 "Gabriel Léo Louis Raphaël Jade Louise Emma Chloé Hugo Camille Élodie Mathéo"),
}

# Phone parts: an int is that many random digits, a tuple is a choice. Formats carry relative weights.
# Numbers pass libphonenumber's validity rules; London and US numbers use the ranges reserved for
# fiction (020 7946 0xxx, 555-01xx).
_NON_ZERO = tuple("123456789")
_PHONES = {
    "CN": ({"p": tuple(map(str, (130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 157, 158, 159,
                                 176, 177, 180, 181, 182, 185, 186, 187, 188, 189, 198, 199))), "a": 4, "b": 4},
           (("{p} {a} {b}", 3), ("+86-{p}-{a}-{b}", 2), ("{p}{a}{b}", 4), ("+86 {p} {a} {b}", 1))),
    "US": ({"area": ("212", "646", "718", "213", "310", "312", "713", "415", "206", "617", "305", "512", "404"),
            "n": 2},
           (("({area}) 555-01{n}", 4), ("{area}-555-01{n}", 2), ("+1 {area}-555-01{n}", 2), ("{area}.555.01{n}", 1),
            ("+1{area}55501{n}", 1))),
    "GB": ({"n": 3, "m": tuple("4578"), "mm": 2, "d": _NON_ZERO, "k": 5},
           (("+44 20 7946 0{n}", 3), ("020 7946 0{n}", 2), ("07{m}{mm} {d}{k}", 3), ("+44 7{m}{mm} {d}{k}", 2))),
    "DE": ({"area": ("30", "40", "89", "69", "221", "711"), "mob": ("151", "152", "157", "160", "170", "171", "176"),
            "d": _NON_ZERO, "n": 6, "m": 8},
           (("+49 {area} {d}{n}", 3), ("0{area} {d}{n}", 3), ("0{mob} {m}", 2), ("+49 {mob} {m}", 2))),
    "FR": ({"d": tuple("123456"), "a": tuple("12345678"), "b": 1, "c": 2, "e": 2, "f": 2},
           (("0{d} {a}{b} {c} {e} {f}", 5), ("+33 {d} {a}{b} {c} {e} {f}", 3), ("0{d}{a}{b}{c}{e}{f}", 2))),
    "JP": ({"area": ("3", "6", "90", "80", "70"), "d": _NON_ZERO, "a": 3, "b": 4},
           (("0{area}-{d}{a}-{b}", 6), ("+81 {area}-{d}{a}-{b}", 3), ("0{area}{d}{a}{b}", 1))),
}
_EMAIL_DOMAINS = ("example.com", "example.cn", "example.org")
_EMAIL_DOMAIN_P = np.array([[0.7, 0.1, 0.2], [0.4, 0.5, 0.1]])  # rows: other countries, CN
# Local-part styles over (a, b) = (family, given) for CJK names, else (given, family).
# {n} is 1-4 digits, {qq} a QQ-style number; digits keep name clashes rare at a million customers.
_EMAIL_STYLES = ("{a}.{b}{n}", "{a}_{b}{n}", "{ai}{b}{n}", "{b}.{a}{n}", "{qq}")
_EMAIL_STYLE_P = np.array([[0.45, 0.15, 0.25, 0.15, 0.0], [0.35, 0.15, 0.2, 0.15, 0.15]])  # rows: other, CN
_EMAIL_CASE_P = (0.7, 0.2, 0.1)  # lower, capitalised (Li.Wei83@Example.com), upper

# --- Dirty rows ---------------------------------------------------------------------------

_NEGATIVE_QUANTITY, _BAD_PRICE, _UNKNOWN_CUSTOMER, _DUPLICATE_LINE = range(4)
_NO_PRICE_DEFECT, _PRICE_NA, _PRICE_EMPTY = range(3)


# --- Entry point --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    start: date
    start_s: int  # UTC epoch seconds, inclusive
    end_s: int  # exclusive

    @classmethod
    def ending(cls, end_date: date, days: int) -> _Window:
        start = end_date - timedelta(days=days - 1)
        start_s = (start - date(1970, 1, 1)).days * DAY_S
        return cls(start, start_s, start_s + days * DAY_S)

    @property
    def start_day(self) -> float:
        return self.start_s / DAY_S

    @property
    def end_day(self) -> float:
        return self.end_s / DAY_S


_STREAMS = ("catalog", "customers", "profiles", "orders", "lines", "surveys", "complaints", "dirty")


def generate(out_dir: Path, customers: int, days: int, seed: int, end_date: date = date(2025, 12, 31),
             dirty_rate: float = 0.001) -> dict[str, int]:
    """Writes day-partitioned raw exports under out_dir; returns row counts per kind (customers, orders, surveys, complaints)."""
    if not 1 <= customers <= 9_999_999:
        raise ValueError("customers must be in 1..9,999,999 (customer_id has 7 digits)")
    if days < 1:
        raise ValueError("days must be >= 1")
    if not 0.0 <= dirty_rate <= 1.0:
        raise ValueError("dirty_rate must be in [0, 1]")
    # Independent streams: changing dirty_rate changes the defects only, never the clean rows.
    rng = dict(zip(_STREAMS, np.random.default_rng(seed).spawn(len(_STREAMS))))
    window = _Window.ending(end_date, days)
    catalog = _Catalog.draw(rng["catalog"])
    cust = _simulate_customers(rng["customers"], customers, window)
    orders = _simulate_orders(rng["orders"], cust, window)
    lines = _simulate_lines(rng["lines"], orders, cust, catalog)
    n_orders = orders["customer"].size
    returned = np.bincount(lines["order_no"][lines["status"] == _RETURNED] - 1, minlength=n_orders) > 0
    surveys = _simulate_surveys(rng["surveys"], orders, returned, cust, window)
    complaints = _simulate_complaints(rng["complaints"], orders, returned, cust, window)
    lines = _dirty_lines(rng["dirty"], lines, dirty_rate, customers)
    _dirty_surveys(rng["dirty"], surveys, dirty_rate)
    _dirty_complaints(rng["dirty"], complaints, dirty_rate)

    frames = {
        "customers": _customer_frame(rng["profiles"], cust, window),
        "orders": _frame(lines, window),
        "surveys": _survey_frame(surveys, window),
        "complaints": _frame(complaints, window),
    }
    return {kind: _write_days(frame, kind, Path(out_dir), window) for kind, frame in frames.items()}


# --- Simulation ---------------------------------------------------------------------------

Table = dict[str, np.ndarray]


def _take(table: Table, rows: np.ndarray) -> Table:
    return {name: column[rows] for name, column in table.items()}


def _local_clock(x: np.ndarray) -> np.ndarray:
    """Warps uniform time within each local day onto the hourly activity profile (monotone, keeps the day)."""
    day = np.floor(x)
    return day + np.interp(x - day, _ACTIVITY_CDF, _HOUR_GRID)


def _utc_seconds(x: np.ndarray, offset_s: np.ndarray) -> np.ndarray:
    """Epoch seconds of unwarped local time x (days); flooring keeps ordered events ordered."""
    return np.floor(_local_clock(x) * DAY_S).astype(np.int64) - offset_s


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cdf = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(len(probs))[:, None] > cdf).sum(axis=1), probs.shape[1] - 1).astype(np.uint8)


@dataclass(frozen=True)
class _Catalog:
    product_no: np.ndarray  # (products,) the digits of product_id
    key: np.ndarray  # category * 100 + log USD price, ascending, so one searchsorted picks within a category
    price: np.ndarray  # (products, currencies) in minor units
    cost: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Catalog:
        per = _PRODUCTS_PER_CATEGORY
        category = np.repeat(np.arange(len(CATEGORIES)), per)
        log_usd = np.sort(rng.normal(np.log(_CATEGORY_MEDIAN_USD), 0.8, (per, len(CATEGORIES))).T, axis=1).ravel()
        fx = np.array([FX_PER_USD[c] for c in CURRENCIES])
        price = _charm_price(np.exp(log_usd)[:, None] * fx)
        cost_ratio = np.clip(rng.normal(0.6, 0.1, category.size), 0.3, 0.9)
        cost = np.rint(price * cost_ratio[:, None]).astype(np.int64)
        product_no = rng.choice(900_000, category.size, replace=False) + 100_000
        return cls(product_no, category * 100.0 + log_usd, price, cost)

    def pick(self, category: np.ndarray, log_usd: np.ndarray) -> np.ndarray:
        """Product of the category priced nearest above the target (clamped to the category)."""
        first = category.astype(np.int64) * _PRODUCTS_PER_CATEGORY
        pos = np.searchsorted(self.key, category * 100.0 + log_usd)
        return np.clip(pos, first, first + _PRODUCTS_PER_CATEGORY - 1)


def _charm_price(local: np.ndarray) -> np.ndarray:
    """Shelf prices in minor units: 19.99 (USD/GBP/EUR), 57.90 (CNY), 1980 (JPY)."""
    columns = {
        "CNY": np.maximum(np.rint(local[:, 0]), 1) * 100 - 10,
        "USD": np.maximum(np.ceil(local[:, 1]), 1) * 100 - 1,
        "GBP": np.maximum(np.ceil(local[:, 2]), 1) * 100 - 1,
        "EUR": np.maximum(np.ceil(local[:, 3]), 1) * 100 - 1,
        "JPY": np.maximum(np.rint(local[:, 4] / 100), 1) * 100 - 20,
    }
    return np.stack([columns[c] for c in CURRENCIES], axis=1).astype(np.int64)


def _simulate_customers(rng: np.random.Generator, n: int, window: _Window) -> Table:
    """Customers sorted by sign-up instant; row index + 1 is the customer number."""
    country = rng.choice(len(COUNTRIES), n, p=_COUNTRY_P).astype(np.uint8)
    offset_s = _OFFSET_S[country]
    pre = rng.random(n) < PRE_WINDOW_SHARE
    x = np.empty(n)  # sign-up as unwarped local time, days since the epoch
    # Ending a full local day early keeps every pre-window sign-up before the window in UTC.
    x[pre] = window.start_day - 1 - PRE_WINDOW_DAYS + rng.uniform(0, PRE_WINDOW_DAYS, pre.sum())
    x[~pre] = _sample_in_window(rng, offset_s[~pre], window)
    signup_s = _utc_seconds(x, offset_s)
    order = np.argsort(signup_s, kind="stable")
    return {
        "country": country[order],
        "x": x[order],
        "signup_s": signup_s[order],
        "rate": rng.gamma(BGNBD_R, 1 / BGNBD_ALPHA, n),
        "dropout": rng.beta(BGNBD_A, BGNBD_B, n),
        "spend": rng.gamma(SPEND_SHAPE, 1 / SPEND_SHAPE, n),
        "favourite": rng.choice(len(CATEGORIES), n, p=_CATEGORY_P).astype(np.uint8),
        "channel": rng.choice(len(ORDER_CHANNELS), n, p=_ORDER_CHANNEL_P).astype(np.uint8),
    }


def _sample_in_window(rng: np.random.Generator, offset_s: np.ndarray, window: _Window) -> np.ndarray:
    """Uniform unwarped local times whose UTC instant lies in the window (rejection at the edges)."""
    x = np.empty(offset_s.size)
    todo = np.arange(offset_s.size)
    while todo.size:
        candidate = rng.uniform(window.start_day - 1, window.end_day + 1, todo.size) + offset_s[todo] / DAY_S
        utc = _utc_seconds(candidate, offset_s[todo])
        inside = (utc >= window.start_s) & (utc < window.end_s)
        x[todo[inside]] = candidate[inside]
        todo = todo[~inside]
    return x


def _simulate_orders(rng: np.random.Generator, cust: Table, window: _Window) -> Table:
    """BG/NBD purchases from sign-up on; those inside the window, sorted by time (index + 1 = order number)."""
    offset_s = _OFFSET_S[cust["country"]]
    # Simulate through the whole local day that holds the window's last UTC instant.
    horizon = np.floor(window.end_day + offset_s / DAY_S) + 1
    exposure = horizon - cust["x"]
    opportunities = rng.poisson(cust["rate"] * exposure)
    made = np.minimum(opportunities, rng.geometric(cust["dropout"]))
    owner = np.repeat(np.arange(made.size, dtype=np.int32), made)
    x = cust["x"][owner] + exposure[owner] * _first_arrivals(rng, made, opportunities)
    utc = _utc_seconds(x, offset_s[owner])
    inside = np.flatnonzero((utc >= window.start_s) & (utc < window.end_s))
    inside = inside[np.lexsort((owner[inside], utc[inside]))]
    owner = owner[inside]
    n = owner.size
    u = rng.random(n)
    status = np.where(u < _CANCEL_P, _CANCELLED, np.where(u < _CANCEL_P + _WHOLE_RETURN_P, _RETURNED, _COMPLETED))
    random_channel = rng.choice(len(ORDER_CHANNELS), n, p=_ORDER_CHANNEL_P).astype(np.uint8)
    return {
        "customer": owner,
        "x": x[inside],
        "utc_s": utc[inside],
        "lines": (rng.choice(len(_LINES_PER_ORDER_P), n, p=_LINES_PER_ORDER_P) + 1).astype(np.uint8),
        "channel": np.where(rng.random(n) < _PREFERRED_CHANNEL_SHARE, cust["channel"][owner], random_channel),
        "status": status.astype(np.uint8),
    }


def _first_arrivals(rng: np.random.Generator, made: np.ndarray, opportunities: np.ndarray) -> np.ndarray:
    """Per customer, the first `made` of `opportunities` sorted uniforms on [0, 1), concatenated.

    Uses U_(i) = S_i / S_(m+1) with S the partial sums of unit exponentials; the unused tail
    S_(m+1) - S_n is one Gamma(m - n + 1) draw, so the cost is linear in purchases made.
    """
    sums = np.concatenate(([0.0], np.cumsum(rng.exponential(size=int(made.sum())))))
    ends = np.cumsum(made)
    before = sums[ends - made]
    total = sums[ends] - before + rng.gamma(opportunities - made + 1.0)
    return (sums[1:] - np.repeat(before, made)) / np.repeat(total, made)


def _simulate_lines(rng: np.random.Generator, orders: Table, cust: Table, catalog: _Catalog) -> Table:
    """Order lines; high-spend customers pick pricier products, and each has a favourite category."""
    counts = orders["lines"]
    order = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
    n = order.size
    line_number = (np.arange(n) - np.repeat(np.cumsum(counts, dtype=np.int64) - counts, counts) + 1).astype(np.uint8)
    owner = orders["customer"][order]
    random_category = rng.choice(len(CATEGORIES), n, p=_CATEGORY_P).astype(np.uint8)
    category = np.where(rng.random(n) < _FAVOURITE_SHARE, cust["favourite"][owner], random_category)
    log_usd = np.log(_CATEGORY_MEDIAN_USD[category] * cust["spend"][owner]) + rng.normal(0.0, 0.6, n)
    product = catalog.pick(category, log_usd)
    country = cust["country"][owner]
    currency = _COUNTRY_CURRENCY[country]
    status = orders["status"][order]
    status[(status == _COMPLETED) & (rng.random(n) < _LINE_RETURN_P)] = _RETURNED
    return {
        "order_no": order + 1,
        "line_number": line_number,
        "customer_no": owner + 1,
        "customer_malformed": np.zeros(n, dtype=bool),
        "utc_s": orders["utc_s"][order],
        "country": country,
        "product_no": catalog.product_no[product].astype(np.int32),
        "category": category,
        "quantity": (1 + rng.poisson(0.45, n)).astype(np.int16),
        "price": catalog.price[product, currency],
        "price_defect": np.zeros(n, dtype=np.uint8),
        "cost": catalog.cost[product, currency],
        "currency": currency,
        "channel": orders["channel"][order],
        "status": status,
    }


def _follow_up(rng: np.random.Generator, orders: Table, chosen: np.ndarray, cust: Table, median_days: float,
               sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Unwarped local time and UTC seconds of an event a log-normal delay after each chosen order."""
    x = orders["x"][chosen] + rng.lognormal(np.log(median_days), sigma, chosen.size)
    return x, _utc_seconds(x, _OFFSET_S[cust["country"][orders["customer"][chosen]]])


def _simulate_surveys(rng: np.random.Generator, orders: Table, returned: np.ndarray, cust: Table,
                      window: _Window) -> Table:
    eligible = orders["status"] != _CANCELLED
    chosen = np.flatnonzero(eligible & (rng.random(eligible.size) < _SURVEY_P))
    _, utc = _follow_up(rng, orders, chosen, cust, 3.0, 0.6)
    answered = np.flatnonzero(utc < window.end_s)  # later answers are not in this export yet
    answered = answered[np.lexsort((chosen[answered], utc[answered]))]
    chosen, utc = chosen[answered], utc[answered]
    owner = orders["customer"][chosen]
    answers, recommend, satisfaction = _servqual(rng, returned[chosen])
    chinese = (cust["country"][owner] == _CN) & (rng.random(chosen.size) < _CHINESE_COMMENT_P)
    return {
        "response_no": np.arange(1, chosen.size + 1),
        "customer_no": owner + 1,
        "order_no": chosen + 1,
        "utc_s": utc,
        "country": cust["country"][owner],
        "answers": answers,
        "recommend": recommend,
        "satisfaction": satisfaction,
        "comment": _comment_index(rng, satisfaction, chinese),
    }


def _servqual(rng: np.random.Generator, returned: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expectation then perception answers (n, 44), recommend (0-10) and satisfaction (1-7) scores.

    A respondent-level expectation level and service experience, plus per-dimension latents, make
    items within a dimension correlate; recommend and satisfaction follow the mean perception.
    """
    n, k = returned.size, len(SERVQUAL_DIMENSIONS)
    expectation = _EXPECTATION_MEAN + rng.normal(0, 0.45, (n, 1)) + rng.normal(0, 0.5, (n, k))
    experience = rng.normal(0, 0.6, (n, 1)) - _RETURN_PENALTY * returned[:, None]
    perception = _EXPECTATION_MEAN + _SERVQUAL_GAP + experience + rng.normal(0, 0.5, (n, k))
    answers = np.concatenate([_likert(rng, expectation), _likert(rng, perception)], axis=1)
    overall = perception.mean(axis=1)
    recommend = np.clip(np.rint(1.6 * overall - 0.3 + rng.normal(0, 1.2, n)), 0, 10).astype(np.int8)
    satisfaction = np.clip(np.rint(overall + 0.4 + rng.normal(0, 0.6, n)), 1, 7).astype(np.int8)
    return answers, recommend, satisfaction


def _likert(rng: np.random.Generator, latent: np.ndarray) -> np.ndarray:
    """1-7 answers: each item is its dimension's latent score plus item noise."""
    noisy = latent[:, _ITEM_DIMENSION] + rng.normal(0, 0.65, (len(latent), _ITEM_DIMENSION.size))
    return np.clip(np.rint(noisy), 1, 7).astype(np.int8)


def _comment_index(rng: np.random.Generator, satisfaction: np.ndarray, chinese: np.ndarray) -> np.ndarray:
    """Index into the flattened COMMENTS pool, shifted by one so 0 means no comment."""
    extreme = (satisfaction <= 2) | (satisfaction == 7)
    written = rng.random(satisfaction.size) < np.where(extreme, _EXTREME_COMMENT_P, _COMMENT_P)
    sentiment = np.where(satisfaction >= 6, 0, np.where(satisfaction <= 3, 2, 1))
    per_pool = len(COMMENTS[0][0])
    pick = (sentiment * 2 + chinese) * per_pool + rng.integers(0, per_pool, satisfaction.size)
    return np.where(written, pick + 1, 0).astype(np.int16)


def _simulate_complaints(rng: np.random.Generator, orders: Table, returned: np.ndarray, cust: Table,
                         window: _Window) -> Table:
    outcome = np.where(returned, _RETURNED, orders["status"])
    chosen = np.flatnonzero(rng.random(outcome.size) < _COMPLAINT_P[outcome])
    opened_x, opened = _follow_up(rng, orders, chosen, cust, 2.0, 0.8)
    n = chosen.size
    owner = orders["customer"][chosen]
    offset_s = _OFFSET_S[cust["country"][owner]]
    severity = rng.choice(len(SEVERITIES), n, p=_SEVERITY_P).astype(np.uint8)
    reopened = rng.random(n) < _REOPENED_P
    first_x = opened_x + rng.lognormal(np.log(_FIRST_RESPONSE_MEDIAN_H[severity]), 0.9) / 24
    # A reopened ticket goes round the resolution loop twice.
    resolve_h = rng.lognormal(np.log(_RESOLUTION_MEDIAN_H[severity]), 1.0) * np.where(reopened, 2.0, 1.0)
    first, resolved = _utc_seconds(first_x, offset_s), _utc_seconds(first_x + resolve_h / 24, offset_s)
    category = _categorical(rng, _COMPLAINT_CATEGORY_P[outcome[chosen]])
    chinese = (cust["country"][owner] == _CN) & (rng.random(n) < _CHINESE_DESCRIPTION_P)
    per_pool = len(DESCRIPTIONS[0][0])
    table = {
        "customer_no": owner + 1,
        "order_no": chosen + 1,
        "has_order": rng.random(n) >= _NO_ORDER_REF_P,
        "country": cust["country"][owner],
        "utc_s": opened,
        "first_s": first,
        # Whatever happens after the export cut-off has not happened yet.
        "has_first": (first < window.end_s) & (rng.random(n) >= _NO_FIRST_RESPONSE_P),
        "resolved_s": resolved,
        "has_resolved": resolved < window.end_s,
        "category": category,
        "severity": severity,
        "channel": rng.choice(len(COMPLAINT_CHANNELS), n, p=_COMPLAINT_CHANNEL_P).astype(np.uint8),
        "is_reopened": reopened,
        "description": ((category * 2 + chinese) * per_pool + rng.integers(0, per_pool, n)).astype(np.int16),
    }
    kept = np.flatnonzero(opened < window.end_s)
    table = _take(table, kept[np.lexsort((chosen[kept], opened[kept]))])
    table["ticket_no"] = np.arange(1, kept.size + 1)
    return table


# --- Dirty rows ---------------------------------------------------------------------------


def _dirty_lines(rng: np.random.Generator, lines: Table, rate: float, customers: int) -> Table:
    """Negative quantity, missing price, unknown customer or an exact duplicate, on ~rate of lines."""
    n = lines["order_no"].size
    hit = rng.random(n) < rate
    defect = rng.integers(0, 4, n)
    # A negative quantity is only unambiguously wrong on a completed line.
    defect[(defect == _NEGATIVE_QUANTITY) & (lines["status"] != _COMPLETED)] = _BAD_PRICE
    lines["quantity"][hit & (defect == _NEGATIVE_QUANTITY)] *= -1
    bad_price = np.flatnonzero(hit & (defect == _BAD_PRICE))
    lines["price_defect"][bad_price] = rng.choice([_PRICE_NA, _PRICE_EMPTY], bad_price.size)
    unknown = np.flatnonzero(hit & (defect == _UNKNOWN_CUSTOMER))
    number = rng.integers(min(customers + 1, 9_999_999), 10_000_000, unknown.size)
    lines["customer_no"][unknown] = number
    # Half are malformed ("C9999999x"); a number that might exist always is.
    lines["customer_malformed"][unknown] = (rng.random(unknown.size) < 0.5) | (number <= customers)
    copies = 1 + (hit & (defect == _DUPLICATE_LINE))
    return _take(lines, np.repeat(np.arange(n), copies)) if copies.sum() > n else lines


def _dirty_surveys(rng: np.random.Generator, surveys: Table, rate: float) -> None:
    """An out-of-scale Likert answer (0 or 9) or a recommend score of 11, on ~rate of responses."""
    hit = np.flatnonzero(rng.random(surveys["response_no"].size) < rate)
    likert = rng.random(hit.size) < 0.5
    rows = hit[likert]
    surveys["answers"][rows, rng.integers(0, 2 * len(SERVQUAL_ITEMS), rows.size)] = rng.choice([0, 9], rows.size)
    surveys["recommend"][hit[~likert]] = 11


def _dirty_complaints(rng: np.random.Generator, complaints: Table, rate: float) -> None:
    """A resolution stamped before the ticket was opened, on ~rate of tickets."""
    hit = np.flatnonzero(rng.random(complaints["ticket_no"].size) < rate)
    complaints["resolved_s"][hit] = complaints["utc_s"][hit] - rng.integers(600, 3 * DAY_S, hit.size)
    complaints["has_resolved"][hit] = True


# --- Rendering and writing ----------------------------------------------------------------


def _partition_day(window: _Window) -> pl.Expr:
    """Day index of the UTC instant in the window; pre-window sign-ups go to the first day."""
    return ((pl.col("utc_s") - window.start_s) // DAY_S).clip(0).alias("day")


def _frame(table: Table, window: _Window) -> pl.DataFrame:
    return pl.DataFrame(table).with_columns(_partition_day(window))


def _survey_frame(surveys: Table, window: _Window) -> pl.DataFrame:
    answers = dict(zip(_ANSWER_COLUMNS, surveys["answers"].T))
    return _frame({k: v for k, v in surveys.items() if k != "answers"} | answers, window)


def _code(prefix: str, column: str, width: int) -> pl.Expr:
    return pl.format(prefix + "{}", pl.col(column).cast(pl.String).str.zfill(width))


def _label(column: str, values: tuple[str | None, ...]) -> pl.Expr:
    return pl.lit(pl.Series(values, dtype=pl.String)).gather(pl.col(column))


def _iso(column: str) -> pl.Expr:
    """ISO 8601 in the customer's fixed UTC offset, e.g. 2025-03-01T14:03:22+08:00."""
    local = pl.col(column) + pl.lit(pl.Series(_OFFSET_S)).gather(pl.col("country"))
    return pl.concat_str(pl.from_epoch(local, time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S"),
                         pl.lit(pl.Series(_OFFSET_TEXT)).gather(pl.col("country")))


def _money(column: str) -> pl.Expr:
    minor = pl.col(column)
    decimals = pl.lit(pl.Series([CURRENCY_DECIMALS[c] for c in CURRENCIES])).gather(pl.col("currency"))
    cents = pl.format("{}.{}", (minor // 100).cast(pl.String), (minor % 100).cast(pl.String).str.zfill(2))
    return pl.when(decimals == 0).then(minor.cast(pl.String)).otherwise(cents)


# Output columns per kind, in file order, each rendered from the numeric frame.
_RENDER: dict[str, dict[str, pl.Expr]] = {
    "customers": {
        "customer_id": _code("C", "customer_no", 7),
        "full_name": pl.col("full_name"),
        "email": pl.col("email"),
        "phone": pl.col("phone"),
        "country": _label("country", tuple(c.code for c in COUNTRIES)),
        "city": pl.col("city"),
        "signed_up_at": _iso("utc_s"),
    },
    "orders": {
        "order_id": _code("O", "order_no", 9),
        "line_number": pl.col("line_number"),
        "customer_id": pl.concat_str(_code("C", "customer_no", 7),
                                     pl.when(pl.col("customer_malformed")).then(pl.lit("x")).otherwise(pl.lit(""))),
        "ordered_at": _iso("utc_s"),
        "product_id": _code("P", "product_no", 6),
        "category": _label("category", CATEGORIES),
        "quantity": pl.col("quantity"),
        # _PRICE_EMPTY falls through to null, written as an empty field.
        "unit_price": pl.when(pl.col("price_defect") == _NO_PRICE_DEFECT).then(_money("price"))
        .when(pl.col("price_defect") == _PRICE_NA).then(pl.lit("N/A")),
        "unit_cost": _money("cost"),
        "currency": _label("currency", CURRENCIES),
        "channel": _label("channel", ORDER_CHANNELS),
        "status": _label("status", ORDER_STATUSES),
    },
    "surveys": {
        "response_id": _code("S", "response_no", 9),
        "customer_id": _code("C", "customer_no", 7),
        "order_id": _code("O", "order_no", 9),
        "responded_at": _iso("utc_s"),
        **{name: pl.col(name) for name in _ANSWER_COLUMNS},
        "recommend_score": pl.col("recommend"),
        "satisfaction_score": pl.col("satisfaction"),
        "comment": _label("comment", (None, *(c for sentiment in COMMENTS for pool in sentiment for c in pool))),
    },
    "complaints": {
        "ticket_id": _code("T", "ticket_no", 9),
        "customer_id": _code("C", "customer_no", 7),
        "order_id": pl.when(pl.col("has_order")).then(_code("O", "order_no", 9)),
        "opened_at": _iso("utc_s"),
        "first_response_at": pl.when(pl.col("has_first")).then(_iso("first_s")),
        "resolved_at": pl.when(pl.col("has_resolved")).then(_iso("resolved_s")),
        "category": _label("category", COMPLAINT_CATEGORIES),
        "severity": _label("severity", SEVERITIES),
        "channel": _label("channel", COMPLAINT_CHANNELS),
        "is_reopened": pl.col("is_reopened"),
        "description": _label("description", tuple(d for category in DESCRIPTIONS for pool in category for d in pool)),
    },
}
COLUMNS = {kind: tuple(render) for kind, render in _RENDER.items()}


def _write_days(frame: pl.DataFrame, kind: str, out_dir: Path, window: _Window) -> int:
    """Renders and writes each day of a day-sorted frame to <kind>/<kind>_<YYYY-MM-DD>.csv|jsonl; returns rows."""
    folder = out_dir / kind
    folder.mkdir(parents=True, exist_ok=True)
    columns = [expr.alias(name) for name, expr in _RENDER[kind].items()]
    suffix = ".jsonl" if kind == "complaints" else ".csv"
    day = frame["day"].to_numpy()
    starts = np.flatnonzero(np.diff(day, prepend=-1))
    for lo, hi in zip(starts, np.append(starts[1:], day.size)):
        part = frame.slice(int(lo), int(hi - lo)).select(columns)
        path = folder / f"{kind}_{window.start + timedelta(days=int(day[lo]))}{suffix}"
        if suffix == ".jsonl":
            part.write_ndjson(path)
        else:
            part.write_csv(path)
    return frame.height


# --- Customer profiles --------------------------------------------------------------------


def _customer_frame(rng: np.random.Generator, cust: Table, window: _Window) -> pl.DataFrame:
    """Customer profiles next to their numeric columns, in customer-number order."""
    parts = []
    for code, country in enumerate(COUNTRIES):
        rows = np.flatnonzero(cust["country"] == code)
        parts.append(_profiles(rng, country, rows.size).with_columns(row=pl.Series(rows)))
    frame = pl.concat(parts).sort("row").with_columns(
        customer_no=pl.Series(np.arange(1, cust["country"].size + 1)),
        country=pl.Series(cust["country"]),
        utc_s=pl.Series(cust["signup_s"]),
    )
    return frame.with_columns(_partition_day(window), email=_emails(rng, frame))


def _profiles(rng: np.random.Generator, country: Country, n: int) -> pl.DataFrame:
    """Name (and its romanised parts a, b for e-mails), phone and city for n customers of one country."""
    pools = _NAMES[country.code]
    family, given = rng.integers(0, len(pools.family), n), rng.integers(0, len(pools.given), n)
    names = pl.DataFrame({
        "native": rng.random(n) < pools.native_share,
        "family": pl.Series([native for native, _ in pools.family]).gather(family),
        "given": pl.Series([native for native, _ in pools.given]).gather(given),
        "family_roman": pl.Series([roman for _, roman in pools.family]).gather(family),
        "given_roman": pl.Series([roman for _, roman in pools.given]).gather(given),
    })
    first, second = ("family", "given") if pools.family_first else ("given", "family")
    city_weight = np.arange(1, len(country.cities) + 1) ** -0.8  # a few big cities dominate
    return names.select(
        full_name=pl.when("native").then(pl.concat_str(first, second, separator=pools.separator))
        .otherwise(pl.concat_str("given_roman", "family_roman", separator=" ")),
        a=f"{first}_roman",
        b=f"{second}_roman",
        phone=_phones(rng, country.code, n),
        city=pl.Series(country.cities).gather(rng.choice(len(city_weight), n, p=city_weight / city_weight.sum())),
    )


def _template(template: str) -> pl.Expr:
    """'{a}-{b}' -> pl.format('{}-{}', col('a'), col('b'))."""
    return pl.format(re.sub(r"\{\w+\}", "{}", template), *map(pl.col, re.findall(r"\{(\w+)\}", template)))


def _render_choice(parts: pl.DataFrame, templates: tuple[str, ...], style: np.ndarray) -> pl.Series:
    """Renders templates[style[i]] for each row i."""
    expr = pl.when(pl.col("style") == 0).then(_template(templates[0]))
    for i, template in enumerate(templates[1:], start=1):
        expr = expr.when(pl.col("style") == i).then(_template(template))
    return parts.with_columns(style=pl.Series(style)).select(expr).to_series()


def _phones(rng: np.random.Generator, code: str, n: int) -> pl.Series:
    spec, formats = _PHONES[code]
    parts = pl.DataFrame({
        name: pl.Series(part).gather(rng.integers(0, len(part), n)) if isinstance(part, tuple)
        else pl.Series(rng.integers(0, 10**part, n)).cast(pl.String).str.zfill(part)
        for name, part in spec.items()
    })
    weights = np.array([w for _, w in formats], dtype=float)
    style = rng.choice(len(formats), n, p=weights / weights.sum())
    return _render_choice(parts, tuple(f for f, _ in formats), style)


def _emails(rng: np.random.Generator, frame: pl.DataFrame) -> pl.Series:
    """Mostly name-based addresses in varied case; clashes get a '+<customer number>' tag so all are unique."""
    n = frame.height
    is_cn = (frame["country"].to_numpy() == _CN).astype(np.intp)
    parts = frame.select(
        "a", "b",
        ai=pl.col("a").str.slice(0, 1),
        n=pl.Series(rng.integers(1, 10_000, n)).cast(pl.String),
        qq=pl.Series(rng.integers(10**5, 10**10, n)).cast(pl.String),
    )
    local = _render_choice(parts, _EMAIL_STYLES, _categorical(rng, _EMAIL_STYLE_P[is_cn]))
    domain = _categorical(rng, _EMAIL_DOMAIN_P[is_cn])
    emails = pl.DataFrame({
        "local": local,
        "domain": pl.Series(_EMAIL_DOMAINS).gather(domain),
        "capitalised_domain": pl.Series([d.capitalize() for d in _EMAIL_DOMAINS]).gather(domain),
        "case": rng.choice(len(_EMAIL_CASE_P), n, p=_EMAIL_CASE_P),
        "customer_no": frame["customer_no"],
    })
    clash = ~pl.concat_str("local", "domain", separator="@").str.to_lowercase().is_first_distinct()
    # Original local parts never contain '+', so a tagged address cannot clash again.
    local = pl.when(clash).then(pl.format("{}+{}", "local", "customer_no")).otherwise("local")
    return emails.select(
        pl.when(pl.col("case") == 0).then(pl.concat_str(local, "domain", separator="@").str.to_lowercase())
        .when(pl.col("case") == 1).then(pl.concat_str(local, "capitalised_domain", separator="@"))
        .otherwise(pl.concat_str(local, "domain", separator="@").str.to_uppercase())
    ).to_series()
