"""Query understanding: what a question asks, apart from how it is asked.

Community workers wrap the topic in persona and framing ("我是社区书记，想问一下…有什么政策支持？");
the retrievers and the coverage signal should see the topic. This module also tells figure
questions from list questions, names the unit a figure question asks for, finds article
references (《X》第N条) and splits a multiple-choice question into its stem and options.

Written by hand: these are patterns of Chinese policy questions that no general library models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.text import chinese_numeral, normalize

# Persona and framing around the topic: who is asking, and the ask itself. Removed for matching only.
_PERSONA = re.compile(
    r"^(?:您好|你好|请问|麻烦问一?下|想问一?下|咨询一?下|问一?下)[，,：:\s]*"
    r"|(?:我|我们|咱们?)(?:是|作为)?(?:一[名个位])?[^，,。？?]{0,12}?(?:的)?(?:社区书记|书记|主任|网格员|社工|社区工作者|工作人员|志愿者|居民|村民|业主|老人|家长)[，,]?"
    r"|^(?:作为|身为)[^，,]{1,14}[，,]"
)
_FRAMING = re.compile(
    r"有什么(?:政策|规定|要求|说法|办法|支持|文件)+(?:支持|依据)?|有没有(?:什么)?(?:相关)?(?:政策|规定|要求|说法|标准|办法)?"
    r"|(?:规划|文件|政策|法律|条例|规定)(?:里|上|中)?(?:是)?怎么(?:说|规定|要求)的?|具体(?:是)?怎么(?:规定|要求)的?"
    r"|(?:是)?怎么回事|是什么意思|是啥意思"
    r"|怎么办|该怎么(?:做|办|弄)|能不能|可不可以|可以吗|行吗|是不是|要不要|需不需要|算不算|管不管"
    r"|[吗呢啊吧呀嘛]+(?=[？?。！!]*$)|[？?。！!]+$"
)
# "哪几个方面", "哪几项", "包括哪些" ask for a list, not a number.
# "哪三项", "哪五个社" name as many things as they count ("哪五年", "哪三天" ask for a time).
_COUNTED = re.compile(r"哪([两二三四五六七八九十]+)(?![几年天日月]|个月)")
_LIST = re.compile(rf"哪些|哪几|{_COUNTED.pattern}|分别|各是|各为|都有|包括什么|有哪")
# Of those, the asks that want things named ("哪几个县", "包括哪些"), not one figure per part (分别).
_NAMING = re.compile(rf"哪些|哪几|{_COUNTED.pattern}|包括什么")
# When something is due or happens, asked for as a figure and as a time alike. A deadline is asked by a
# time word ("啥时候之前", "哪个月之前"); "之前" alone dates the case ("接这个活之前").
_WHEN = r"哪一?年|哪个月|什么时候|啥时候|什么时间|啥时间|哪个时间|何时|时限|期限|截止|前完成"
_FIGURE = re.compile(
    rf"多少|几(?![乎]|点[^钟]|个方面)|比例|百分|比率|覆盖率|目标值|基础值|数量|面积|多长|多久|多大|多远|哪一?天|{_WHEN}|几点"
)
# The unit a figure question names ("多少钱", "几名", "几点"): the evidence must carry a figure of that kind.
_ASKED_UNIT = (
    # Pay, allowances, fees and fines are sums of money however the ask goes on ("工资最低是多少", "罚多少",
    # "能领多少生活补贴"; not "多少人能领补贴", "满多少周岁发津贴").
    # Not when another unit follows 多少 ("工资多少天发一次", "罚多少分"), nor 处罚/惩罚/罚则.
    (re.compile(r"多少钱|多少元|多少万|多少\w{0,4}费|(?:领|拿|发|给|补|有)多少(?![个天日年月人名项种类档级次分号岁户小家周米位])\w{0,3}?(?:工资|薪酬|津贴|补贴|补助|奖金)|(?:钱|费用?|工资|薪酬|薪水|报酬|津贴|补贴|补助|奖金|罚款|(?<![处惩])罚(?!则))"
                r"(?:的)?(?:标准|上限|下限|最低|最高|一般)?(?:是|为|能给|能|给|有|得|可以)?多少(?![个天日年月人名项种类档级次分号岁户小])"),
     "money"),
    # ... and when the ask names the sum first and asks after it ("有补贴没？一个月补多少").
    # Only a pay noun (费 is in 经费, 收费, 物业费 …), and only when 多少 closes the ask.
    (re.compile(r"(?:工资|薪酬|薪水|报酬|津贴|补贴|补助|奖金|罚款)[^多几]*多少[？?。！!]*$"), "money"),
    (re.compile(r"(?:多少|几)(?:个)?(?:学时|课时|小时|钟头)"), "hours"),
    (re.compile(r"几点"), "clock"),
    (re.compile(r"多大年纪|多少岁|几岁|多大岁数|年龄(?:上限|下限)?(?:是)?多少"), "age"),
    (re.compile(r"多少分贝|分贝"), "decibel"),
    (re.compile(r"(?:多少|几)(?:名|个人|人)|多少(?:名)?(?:队员|民警|工作人员)|几名"), "people"),
    (re.compile(r"(?:多少|几)(?:天|日)|几个月"), "days"),
    (re.compile(r"(?:多少|几)年"), "years"),
    # "绳子多长", "多少米以内": a length; "多长(的)时间" is a duration, "任期/公示/保存多长" a term, not
    # lengths; "多远" is answered as often by a walk's minutes (一刻钟) as by metres.
    (re.compile(r"(?<![期示存])多长(?!的?时间)|多少米|几米|长度"), "length"),
    (re.compile(r"多少平方米|多大面积|面积(?:是)?多少"), "area"),
    (re.compile(r"多少张|几张"), "beds"),
    (re.compile(r"(?<![这那好])(?:多少|几)户(?!籍)"), "households"),
    (re.compile(r"(?:多少|几)(?:个|家|所|组|项|块|类|支|处)"), "count"),
    (re.compile(r"几次|多少次"), "times"),
    (re.compile(r"比例|百分之|覆盖率|占比|多少成|几成|率(?:是|要达到|达到)?多少"), "share"),
    # "低保标准是多少": a standard is a quantity with a unit (元, 平方米, 小时 …), not a year or a count.
    (re.compile(r"标准(?:是|为|有)?多少"), "quantity"),
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# A question about time: a year or a deadline answers it ("2025年", "年底前").
_TIME = re.compile(rf"{_WHEN}|几月|到哪年|多久|多长时间|时间节点")
# A sentence that asks something: one ending in a question mark, or an unterminated last one with
# an interrogative word; one ending in 。 or ！ tells (十几位老人, 好几个 are not questions). A worker's
# case ("我们社区有2800户…") comes first; the ask is the run of asking sentences at the end.
_SENTENCE = re.compile(r"[^。！!？?；;\n]+[。！!？?；;\n]*")
_INTERROGATIVE = re.compile(
    r"吗|呢|多少|(?<![十好这那一])几(?![十百千万])|啥|什么|哪|谁|怎么|怎样|如何|咋|是否|有没有|能不能|可不可以|要不要|行不行|算不算|该不该|是不是|对不对"
)


# "规划说城市社区要全覆盖，那农村社区要达到多少": what follows "，那" asks; what comes before is the case
# it sets against (that, not 那些/那天, is the conjunction).
_THEN = re.compile(r"[，,]\s*(?=那(?![些个里儿样天时边]))")


def _asks(sentence: str) -> bool:
    end = sentence.rstrip()[-1:]
    if end in "？?":
        return True
    return end not in "。！!；;" and bool(_INTERROGATIVE.search(sentence))


_OPTION = re.compile(r"(?:^|[\s(（。，,；;：:？?）)])([A-Ea-e])\s*[.．、:：)）]\s*")
_NEGATIVE_STEM = re.compile(r"不包括|不属于|不正确|错误的是|错误的有|不符合|不是")
# "哪些", "（多选）", "…的有（ ）" (an exam's "的有" asks for all that apply, "的是" for one): more than
# one option may be right.
_MULTIPLE_STEM = re.compile(r"多选|多项|哪些|哪几项|的有(?=\s*(?:[（(:：]|$))")
_ARTICLE = re.compile(r"(?:《([^》]{2,40})》)?\s*第([一二三四五六七八九十百零〇两\d]+)条(?:第([一二三四五六七八九十]+)款)?")
# Questions that try to instruct the bot: an imperative addressed to it, not a word in a policy
# question ("社区工作者扮演什么角色", "居民忘记缴纳物业费" and "上级部门的指令性任务" are questions).
_INSTRUCTION = re.compile(
    r"(?:忽略|无视|忘记|忘掉|不要理会|别管)(?:你|掉)?(?:之前|以上|上面|前面|先前|所有|全部|刚才)的?(?:所有|全部)?(?:指令|指示|提示|规则|设定|要求|内容|对话)"
    r"|(?:输出|打印|告诉我|显示|泄露|重复)(?:你的|一下你的)?(?:系统)?(?:提示词|系统提示|prompt|指令|设定)"
    r"|系统提示词?|你现在(?:是|扮演|作为)|(?:请你|你要|你来|你需要)扮演|扮演(?:一个|一名|成)|越狱|jailbreak"
    r"|ignore\s+(?:all|the|previous|above|prior)|system\s+prompt|you\s+are\s+now|act\s+as",
    re.IGNORECASE,
)


@dataclass
class Choice:
    """A multiple-choice question: the stem, options by letter, whether it asks for the wrong ones
    (错误的是) and whether several may be right (多选, 哪些)."""

    stem: str
    options: dict[str, str]
    negative: bool = False
    multiple: bool = False


@dataclass
class Query:
    """One question, understood.

    Attributes:
        text: the question as asked (stripped).
        topic: the question without persona and framing; what retrieval and coverage look at.
        ask: the topic of the sentences that ask (the whole topic when the question is one sentence).
        situation: the case told before the ask ("我们社区有2800户…"), empty when there is none.
        numbers: the numbers the ask states (the situation's "就6个", "1200平方米" describe the case).
        is_figure: the ask wants a number, date or deadline. is_list: it wants several things.
        names: it wants several things named (哪几个, 哪些), not one figure per part (分别).
        count: how many things it wants named ("哪三项": 3; 0 when it does not say).
        asks_time: the ask wants a date or a deadline (a calendar year answers it; it fills no other figure).
        asked_unit: the kind of figure asked for (``figures.UNIT_CLASSES`` key), if the ask names one.
        choice: set for multiple-choice questions.
        article: (document name or "", article number, paragraph or 0) for "《X》第N条第M款".
        instruction: the question tries to instruct the bot.
    """

    text: str
    topic: str
    ask: str = ""
    situation: str = ""
    numbers: list[str] = field(default_factory=list)
    is_figure: bool = False
    is_list: bool = False
    names: bool = False
    count: int = 0
    asks_time: bool = False
    asked_unit: str | None = None
    choice: Choice | None = None
    article: tuple[str, int, int] | None = None
    instruction: bool = False


def parse_choice(text: str) -> Choice | None:
    """Stem and options when ``text`` lists at least two lettered options A, B, (C, D, E) in order."""
    marks = [m for m in _OPTION.finditer(text)]
    letters = [m.group(1).upper() for m in marks]
    start = next((i for i, letter in enumerate(letters) if letter == "A"), None)
    if start is None:
        return None
    marks = marks[start:]
    expected = "ABCDE"[: len(marks)]
    if len(marks) < 2 or "".join(m.group(1).upper() for m in marks) != expected:
        return None
    bounds = [m.start() for m in marks[1:]] + [len(text)]
    options = {m.group(1).upper(): text[m.end():end].strip(" ，,；;。") for m, end in zip(marks, bounds)}
    if not all(options.values()):
        return None
    stem = text[: marks[0].start()].strip()
    return Choice(stem=stem, options=options, negative=bool(_NEGATIVE_STEM.search(stem)),
                  multiple=bool(_MULTIPLE_STEM.search(stem)))


def _article(text: str) -> tuple[str, int, int] | None:
    m = _ARTICLE.search(text)
    if not m:
        return None
    number = int(m.group(2)) if m.group(2).isdigit() else chinese_numeral(m.group(2))
    paragraph = chinese_numeral(m.group(3)) if m.group(3) else 0
    return (m.group(1) or "", number, paragraph)


def split_ask(text: str) -> tuple[str, str]:
    """(situation, ask): the trailing sentences that ask something, apart from the case told before
    them or set against them ("…，那农村社区要达到多少"). A question of one sentence with no such "，那",
    or one where no sentence asks, is all ask."""
    sentences = _SENTENCE.findall(text)
    cut = len(sentences)
    while cut > 0 and _asks(sentences[cut - 1]):
        cut -= 1
    if cut == len(sentences):
        return "", text
    situation, ask = ("", text) if cut == 0 else ("".join(sentences[:cut]).strip(), "".join(sentences[cut:]).strip())
    # Only when "那…" asks on its own: "任期几年，那居委会呢" asks the first part's question of another group.
    if (then := list(_THEN.finditer(ask))) and then[-1].start() > 0 and _asks_itself(ask[then[-1].end():]):
        situation, ask = (situation + ask[: then[-1].start()]).strip(), ask[then[-1].end():]
    return situation, ask


def _asks_itself(text: str) -> bool:
    """Whether ``text`` has a question word of its own (呢 alone only points back at the question before)."""
    return any(m.group() != "呢" for m in _INTERROGATIVE.finditer(text))


def topic_of(text: str) -> str:
    """``text`` without persona and framing (falls back to ``text`` when nothing else is left)."""
    topic = _FRAMING.sub("", _PERSONA.sub("", text)).strip(" ，,。？?")
    return topic if len(normalize(topic)) >= 2 else text


def understand(question: str) -> Query:
    """Read ``question`` once; every later stage uses the result instead of re-reading the text."""
    text = question.strip()
    choice = parse_choice(text)
    core = choice.stem if choice else text
    situation, ask = split_ask(core)
    normal = normalize(ask)
    without_list = _LIST.sub("", normal)  # "哪几个" asks for a list, not a count
    asked = next((unit for pattern, unit in _ASKED_UNIT if pattern.search(without_list)), None)
    is_list = bool(_LIST.search(normal))
    is_figure = bool(_FIGURE.search(without_list))
    return Query(
        text=text,
        topic=topic_of(core),
        ask=topic_of(ask),
        situation=situation,
        numbers=_NUMBER.findall(normal),
        is_figure=is_figure and choice is None,
        is_list=is_list,
        names=bool(_NAMING.search(normal)) and choice is None,
        count=chinese_numeral(counted.group(1)) if (counted := _COUNTED.search(normal)) else 0,
        asks_time=bool(_TIME.search(normal)),
        asked_unit=asked if choice is None else None,
        choice=choice,
        article=_article(text),
        instruction=bool(_INSTRUCTION.search(text)),
    )
