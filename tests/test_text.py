"""Normalisation is for matching only; sentence spans and numerals behave as the parser needs."""

from bot.text import chinese_numeral, normalize, sentence_spans


def test_normalize_folds_width_case_and_spaces():
    assert normalize("（一） Ａ１ 村(社区)") == normalize("(一)a1村（社区）")


def test_sentence_spans_keep_end_marks_and_trim_spaces():
    text = "第一句。 第二句；第三句"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["第一句。", "第二句；", "第三句"]


def test_chinese_numerals_up_to_ninety_nine():
    assert [chinese_numeral(n) for n in ("一", "十", "十二", "二十", "九十九")] == [1, 10, 12, 20, 99]
