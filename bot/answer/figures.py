"""Figures in policy text: one vocabulary of units, numeral normalisation and extraction.

The answer writer, the refusal rules and the grounding guard all compare figures; they do it
with these helpers, so "八小时" and "8小时", "百分之十" and "10%", "二十日" and "20日" are the
same figure everywhere.
"""

from __future__ import annotations

import re

from bot.models import Clause
from bot.text import chinese_numeral, normalize

# Units a figure can carry, longest first so "万元" wins over "元" and "平方米" over "米".
UNITS = (
    "平方米", "万元", "亿元", "周岁", "小时", "分钟", "学时", "课时", "分贝", "个月",
    "%", "‰", "年", "月", "日", "天", "时", "个", "名", "户", "项", "次", "人", "家", "所", "条",
    "岁", "元", "倍", "张", "米", "组", "届", "级", "块", "类",
)
_UNIT_RE = "|".join(re.escape(u) for u in UNITS)
CN_NUM = "零〇一二两三四五六七八九十百千万"
FIGURE = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT_RE})?")
# Figures worth highlighting in a handout or hiding in a quiz blank, by kind: percentages, years,
# deadlines and counts of these units. ``KEY_FIGURE`` finds any of them.
KEY_UNITS = ("个", "名", "小时", "平方米", "分钟", "户", "人")
_KEY_UNIT_RE = "|".join(KEY_UNITS)
KEY_FIGURE_KINDS = {
    "percent": re.compile(r"[≥>]?\d+(?:\.\d+)?[%‰]"),
    "year": re.compile(r"20\d\d年(?:年底|年末)?"),
    "deadline": re.compile(r"\d{1,2}月底前"),
    "count": re.compile(rf"\d+(?:{_KEY_UNIT_RE})"),
}
KEY_FIGURE = re.compile(rf"[≥>]?\d+(?:\.\d+)?(?:%|‰|{_KEY_UNIT_RE}|年(?:年底|年末|底)?|月底前)")

# What a question asks for, by the unit it names: a figure of any of these units answers it.
# 多少钱 asks for money, 几点 for a clock time, 多大年纪 for an age.
UNIT_CLASSES: dict[str, tuple[str, ...]] = {
    "money": ("元", "万元", "亿元"),
    "hours": ("小时", "学时", "课时"),
    "clock": ("时",),
    "age": ("岁", "周岁"),
    "decibel": ("分贝",),
    "people": ("人", "名", "分之", "过半数", "半数", "%"),
    "days": ("日", "天", "个月", "月", "年"),
    "years": ("年", "届"),
    "area": ("平方米",),
    "length": ("米",),
    "beds": ("张",),
    # "多少户同意" is answered by a share of them as often as by a number of households.
    "households": ("户", "分之", "过半数", "半数", "%"),
    "times": ("次",),
    "count": ("个", "名", "人", "户", "家", "所", "组", "项", "块", "类", "张", "条", "分之", "过半数", "半数"),
    "share": ("%", "‰", "分之", "过半数", "半数", "成"),
    "quantity": ("元", "万元", "亿元", "平方米", "米", "小时", "学时", "课时", "分钟", "分贝", "%", "‰", "分之",
                 "人", "名", "户", "天", "日", "个月"),
}


def normalize_figures(text: str) -> str:
    """Matching form: widths folded, no spaces, Chinese numerals before units and in 百分之/千分之 as digits."""
    t = normalize(text)
    t = re.sub(rf"百分之([{CN_NUM}]+|\d+(?:\.\d+)?)", lambda m: f"{_num(m.group(1))}%", t)
    t = re.sub(rf"千分之([{CN_NUM}]+|\d+(?:\.\d+)?)", lambda m: f"{_num(m.group(1))}‰", t)
    t = re.sub(rf"([{CN_NUM}]+)(?=({_UNIT_RE}))", lambda m: _cn(m.group(1)), t)
    return t


def _cn(numeral: str) -> str:
    try:
        return str(chinese_numeral(numeral))
    except KeyError:  # "千万" and other runs that are words, not numbers
        return numeral


def _num(s: str) -> str:
    return s if s[0].isdigit() else _cn(s)


def units_in(text: str) -> set[str]:
    """The units of the figures in ``text`` ("每天不少于8小时" -> {"小时"}), plus share words.
    A calendar year ("2025年") is a date, not a duration, and counts as no unit."""
    t = normalize_figures(text)
    found = {u for n, u in FIGURE.findall(t) if u and not (u == "年" and len(n) == 4)}
    found |= {w for w in UNIT_CLASSES["share"] if w in t and not w[0].isdigit()}
    return found


# "具体办法和标准由省辖市人民政府制定": the text names who sets the figure instead of stating it;
# a "how much" question it is the best clause for is answered "not set here, set by …" (delegated).
# Pay ("生活补贴，由所在地人民政府另行规定") is delegated the same way as a standard.
_DELEGATION = re.compile(r"(?:标准|办法|数额|金额|补贴|津贴|补助|报酬|待遇)[^。；]{0,20}由[^。；]{2,30}(?:制定|规定|确定)")


def delegates(text: str) -> bool:
    """Whether ``text`` says who sets a figure instead of stating it."""
    return bool(_DELEGATION.search(text))


def answers_unit(text: str, unit_class: str) -> bool:
    """Whether ``text`` holds a figure of the kind ``unit_class`` asks for."""
    return bool(units_in(text) & set(UNIT_CLASSES[unit_class]))


# Phrases of a clause, and how much of one before a figure (or an option) makes it a statement two
# documents can both make ("村民委员会每届任期" 三年 / 五年).
PHRASE = re.compile(r"[，,。；;：:、]")
FRAME_CHARS = 4


def conflict(a: str, b: str) -> bool:
    """Whether two texts state one thing with different figures: a phrase that begins alike (at least
    ``FRAME_CHARS`` characters) before a figure with a unit, and another figure after it."""
    sa, sb = _statements(a), _statements(b)
    return any(sa[frame] != sb[frame] for frame in sa.keys() & sb.keys())


def _statements(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for phrase in PHRASE.split(normalize_figures(text)):
        for m in FIGURE.finditer(phrase):
            if m.start() >= FRAME_CHARS and m.group(2):
                out.setdefault(phrase[: m.start()], set()).add(m.group(0))
    return out


def figure_values(text: str) -> set[str]:
    """Figures with their units, in matching form ("八小时" -> "8小时")."""
    return {n + u for n, u in FIGURE.findall(normalize_figures(text))}


def table_row(clause: Clause) -> str:
    """An indicator row read with its header: 指标 X；2020年 基础值 Y；…"""
    header = [c.strip() for c in clause.context.split("|")]
    cells = [c.strip() for c in clause.text.split("|")]
    return "；".join(f"{h} {v}" for h, v in zip(header[1:], cells[1:]))
