"""Follow-up questions resolved from the thread, without an LLM.

"那农村呢？" after a question on 城市社区, "河南的规定呢？" after one on a national law, "具体多少？"
or "这个由谁负责？" after a requirement: the new turn leans on the earlier one. This module decides
whether a turn stands alone and, if not, builds the question actually searched: the earlier turn's
topic with what the new turn changes (a place, a group, a level of government, the asked detail).

Written by hand: the patterns are those of Chinese follow-ups in policy Q&A; a rewrite by an LLM
would need a model this project does not ship.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.answer.query import topic_of
from bot.text import normalize

# Words that stand for something said before.
_PRONOUN = re.compile(r"这个|这些|这项|这类|这种|这方面|这一?条|这事|它们?|他们|她们|其中|上述|前面说的|刚才说的|该项|该条|那个|那些")
# ... used as the subject ("这个由谁负责？"), not as a determiner ("这个规划的目标", "给他们买保险").
_PRONOUN_SUBJECT = re.compile(rf"(?:^|[，,])(?:那|那么)?(?:{_PRONOUN.pattern})(?=由|是|要|怎么|如何|需要|有|能|呢|该|归|在|具体|[？?，,]|$)")
# ... with at most this many characters before it (a greeting, "请问"): after a case told in the
# turn itself ("…仓库门口那段路要拓宽，这事要不要先跟人家商量？") the pronoun points back into the turn.
_OWN_ANTECEDENT = 6
# A turn that opens or closes like a follow-up: "那…呢", "…呢？", "那要是…", "如果是…呢".
_FOLLOW_OPENING = re.compile(r"^(?:那|那么|那如果|如果是|要是|换成|假如是|还有|另外)")
_FOLLOW_CLOSING = re.compile(r"呢[？?。!！]*$")
# Asks for a detail of what was said: nothing of a topic in them.
_DETAIL = re.compile(
    r"^(?:具体|那|那么)?(?:要求)?(?:是)?(?:多少|几个|几名|几次|多久|多长时间|什么时候|何时|由谁(?:来)?(?:负责|牵头|组织|决定)?|谁(?:来)?(?:负责|牵头|组织|说了算|管)"
    r"|怎么(?:办|做|弄|处理)|有什么(?:要求|规定|标准)|依据(?:是)?(?:什么|哪条)|哪个文件(?:规定的)?|出处(?:是)?(?:哪里)?|有没有(?:例外|标准))"
    r"[？?。!！]*$"
)
# What a follow-up may swap in: each group lists words that take each other's place.
_SWAPS = (
    ("农村社区", "城市社区"), ("农村", "城市"), ("村民委员会", "居民委员会"), ("村委会", "居委会"),
    ("村民会议", "居民会议"), ("村民", "居民"), ("县(市、区)", "市辖区"), ("县里", "市辖区"),
    ("城区", "县(市、区)"), ("县里", "城区"),
)
# Groups of people a follow-up can ask about instead ("那志愿者呢" after a question on 社区工作者).
_GROUPS = ("社区党组织书记", "社区工作者", "社会工作者", "志愿者", "网格员", "楼栋长", "在职党员", "党员", "业主委员会",
           "业主", "老年人", "残疾人", "未成年人", "儿童", "居民", "村民", "灾害信息员", "社会救助协理员")
# Levels of government a follow-up can ask about ("河南的呢", "国家怎么规定").
_LEVELS = {"河南": "河南省", "省里": "河南省", "河南省": "河南省", "国家": "国家", "全国": "国家", "许昌": "许昌市", "市里": "许昌市"}
_LEVEL = re.compile("|".join(sorted(_LEVELS, key=len, reverse=True)))
_LEVEL_WORDS = re.compile(r"河南省?|国家|全国|许昌市?|省里|市里")
# "国家怎么规定的？", "河南是怎么说的": the same question asked of another level.
_LEVEL_ASK = re.compile(r"^(?:那|那么)?(?:河南省?|国家|全国|许昌市?|省里|市里)(?:的|层面|这边|那边)?(?:是)?(?:怎么|如何)(?:规定|说|要求)的?[？?。!！]*$")
# A short turn that starts with the verb or the question word has left its subject in the earlier
# turn ("要提前多久说？", "是哪几块？", "多少人参加才有效？", "几天？").
_ELLIPTICAL = re.compile(r"^(?:那|那么)?(?:具体|要|是|有没有|有|能不能|能|可以|可不可以|需要|需不需要|得|应该|应当|该|谁|由谁|"
                         r"什么时候|何时|怎么|如何|多少|多久|多长|几|哪些|哪几|哪个|包括|一共|最多|最少|至少)")
_SHORT = 12
# The earlier turn's own ask, when a new one takes its place ("村民代表会议多久开一次" + "多少人参加才能
# 开？" asks about 村民代表会议, not how often): a question word for a manner, a time or a person with a
# short verb after it ("多久开一次", "怎么推选"); "几名灾害信息员" names the subject and stays.
_OLD_ASK = re.compile(r"(?:要|需要|得|应当|应该|能|可以)?(?:多久|多长时间|怎么|如何|什么时候|何时|由谁|是什么|是谁)(.{0,6})$")
_FILLER = re.compile(r"^(?:那|那么|那如果|如果是|要是|换成|假如是|还有|另外)|(?:的)?(?:规定|要求|情况|标准)?呢[？?。!！]*$|[？?。!！]+$")


@dataclass
class Resolution:
    """How a turn is understood.

    Attributes:
        question: what is searched (the turn itself when it stands alone).
        leaned: the turn leans on earlier turns (and ``question`` was built from them).
        needs_context: the turn leans on earlier turns but there are none.
    """

    question: str
    leaned: bool = False
    needs_context: bool = False


def is_follow_up(turn: str, names_topic: Callable[[str], bool] | None = None) -> bool:
    """Whether ``turn`` leans on what was said before: by its form, or (with ``names_topic``, which
    tells whether a text names a topic of the corpus) a short turn that names none ("任期多长？")."""
    t = turn.strip()
    if names_topic is not None and len(normalize(t)) <= _SHORT and not names_topic(t):
        return True
    short = len(normalize(t)) <= 14
    return bool(
        _DETAIL.match(normalize(t)) or _LEVEL_ASK.match(t)
        or (len(normalize(t)) <= _SHORT and (_ELLIPTICAL.match(t) or _level_then_ellipsis(t)))
        or _leans_by_pronoun(t)
        or (short and (_FOLLOW_OPENING.match(t) or _FOLLOW_CLOSING.search(t)))
    )


def _leans_by_pronoun(turn: str) -> bool:
    """"这个由谁负责？" leans on the thread; a case told first, then "这事要不要…", does not."""
    m = _PRONOUN_SUBJECT.search(turn)
    return bool(m) and len(normalize(turn[:m.start()])) <= _OWN_ANTECEDENT


def _level_then_ellipsis(turn: str) -> bool:
    """"河南规定几个人？" leans on the thread; "河南的居委会一般几个人？" does not."""
    m = _LEVEL.match(turn)
    if not m:
        return False
    rest = re.sub(r"^(?:的|省|这边|那边)?(?:规定|要求|是)?", "", turn[m.end():])
    return not rest.strip("？?。！! ") or bool(_ELLIPTICAL.match(rest))


def _without_ask(base: str) -> str:
    """``base`` less its own ask (``_OLD_ASK``) when enough of a subject is left to search."""
    head = _OLD_ASK.sub("", base).rstrip("的 ，,")
    return head if len(normalize(head)) >= 4 else base


def _swap(base: str, change: str) -> tuple[str, bool]:
    """``base`` with the counterpart of a word in ``change`` replaced ("城市社区…" + "农村" -> "农村社区…")."""
    for a, b in _SWAPS:
        for new, old in ((a, b), (b, a)):
            if new in change and old in base and new not in base:
                return base.replace(old, new), True
    return base, False


def _with_level(base: str, change: str) -> str:
    """``base`` asked of another level of government: the old level word replaced or the new one added."""
    level = _LEVELS[_LEVEL.search(change).group(0)]
    if _LEVEL_WORDS.search(base):
        return _LEVEL_WORDS.sub(level, base, count=1)
    return f"{level}{base}"


def resolve(turn: str, history: list[str], names_topic: Callable[[str], bool] | None = None) -> Resolution:
    """The question to search for ``turn`` given the earlier user turns (oldest first).

    Earlier turns are themselves resolved first, so a third turn leans on what the second meant.
    ``names_topic`` (see ``is_follow_up``) applies only when there is a thread: a short question
    alone is asked as it stands.
    """
    turn = turn.strip()
    if not is_follow_up(turn, names_topic if history else None):
        return Resolution(turn)
    if not history:
        return Resolution(turn, needs_context=True)
    previous = resolve(history[-1], history[:-1], names_topic)
    if previous.needs_context:
        return Resolution(turn, needs_context=True)
    base = topic_of(previous.question).rstrip("？?。！! ")
    change = _FILLER.sub("", turn).strip()
    if _DETAIL.match(normalize(turn)):
        return Resolution(f"{base}，{turn}", leaned=True)
    if _LEVEL_ASK.match(turn):
        return Resolution(_with_level(base, turn), leaned=True)
    if _level_then_ellipsis(turn) and len(normalize(turn)) <= _SHORT:  # "河南规定一年开几次？"
        rest = _LEVEL.sub("", turn, count=1).strip("的 ，,")
        return Resolution(_with_level(base, turn) + (f"，{rest}" if rest else ""), leaned=True)
    if _ELLIPTICAL.match(turn) and len(normalize(turn)) <= _SHORT:
        return Resolution(f"{_without_ask(base)}，{turn.rstrip('？?。！! ')}", leaned=True)
    if _LEVEL.search(change) and len(normalize(change)) <= 8:
        rest = _LEVEL.sub("", change).strip("的 ")
        return Resolution(_with_level(base, change) + (f"，{rest}" if rest else ""), leaned=True)
    swapped, done = _swap(base, change)
    if done:
        leftover = change
        for a, b in _SWAPS:
            leftover = leftover.replace(a, "").replace(b, "")
        leftover = leftover.strip("的 ，,")
        return Resolution(swapped + (f"，{leftover}" if len(leftover) > 1 and leftover not in swapped else ""), leaned=True)
    new_group = next((g for g in _GROUPS if g in change), None)
    old_group = next((g for g in _GROUPS if g in base and g != new_group), None)
    if new_group and old_group and new_group not in base:
        leftover = change.replace(new_group, "").strip("的 ，,")
        return Resolution(base.replace(old_group, new_group, 1) + (f"，{leftover}" if len(leftover) > 1 else ""), leaned=True)
    body = _PRONOUN.sub("", change).strip("的 ，,")
    return Resolution(f"{base}，{body}" if body else base, leaned=True)
