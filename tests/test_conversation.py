"""Follow-up questions are resolved from the thread; stand-alone questions are not touched by it."""

from __future__ import annotations

import pytest

from bot.answer.conversation import is_follow_up, resolve


@pytest.mark.parametrize(("turn", "history", "expected"), [
    ("那农村呢？", ["城市社区到2023年要有多少个社区社会组织？"], "农村社区到2023年要有多少个社区社会组织"),
    ("那村委会呢？", ["居委会一届任期几年？"], "村委会一届任期几年"),
    ("河南的规定呢？", ["居委会由几个人组成？"], "河南省居委会由几个人组成"),
    ("国家怎么规定的？", ["河南省村委会一届干几年？"], "国家村委会一届干几年"),
    ("那志愿者呢？", ["社区工作者要参加培训吗？"], "志愿者要参加培训"),
])
def test_a_follow_up_takes_the_earlier_topic_with_what_it_changes(turn, history, expected):
    r = resolve(turn, history)
    assert r.leaned and r.question == expected


def test_a_detail_follow_up_keeps_the_earlier_topic_and_asks_the_detail():
    r = resolve("具体多少？", ["社区综合服务设施开放时间有要求吗？"])
    assert r.leaned and "社区综合服务设施开放时间" in r.question and "具体多少" in r.question


def test_a_third_turn_leans_on_what_the_second_meant():
    r = resolve("乡镇呢？", ["千人示范培训，市级每年培训谁？", "那县里呢？"])
    assert r.leaned and "千人示范培训" in r.question


def test_a_new_ask_replaces_the_earlier_turns_ask_and_keeps_its_subject():
    assert resolve("多少人参加才能开？", ["村民代表会议多久开一次？"]).question == "村民代表会议，多少人参加才能开"
    # "几名灾害信息员" names what is asked about: it stays.
    assert "灾害信息员" in resolve("什么时候之前？", ["社区要配几名灾害信息员？"]).question


def test_a_case_told_in_the_turn_is_what_its_pronoun_points_to():
    turn = "我们村地界上驻着一家县属国企的仓库，村两委想把仓库门口那段路拓宽，得占他们一点地。这事要不要先跟人家商量？"
    assert not is_follow_up(turn) and not resolve(turn, []).needs_context
    assert resolve("你好，这个由谁负责？", []).needs_context  # a greeting is no case


def test_a_follow_up_without_a_thread_needs_context():
    r = resolve("那农村呢？", [])
    assert r.needs_context and not r.leaned


@pytest.mark.parametrize("turn", [
    "这个规划的目标要到什么时候实现？",  # 这个 as a determiner
    "组织志愿者去防汛，要给他们买保险吗？",
    "河南的居委会一般几个人？",
    "社区综合服务设施每天开放多长时间？",
])
def test_complete_questions_are_not_follow_ups(turn):
    assert not is_follow_up(turn)
    assert resolve(turn, ["业主不交物业费怎么办？"]).question == turn


def test_a_short_turn_naming_no_topic_leans_on_the_thread_when_there_is_one():
    def names_topic(text):
        return "敬老月" in text

    assert resolve("任期多长？", ["村民代表怎么推选？"], names_topic).leaned
    assert not resolve("敬老月是哪个月？", ["村民代表怎么推选？"], names_topic).leaned
    assert not resolve("任期多长？", [], names_topic).needs_context  # alone, a short question is asked as it stands


def test_the_bot_answers_a_follow_up_from_its_thread(bot):
    a = bot.ask("那农村呢？", history=["城市社区到2023年要有多少个社区社会组织？"])
    assert a.found and "5个" in a.answer and a.resolved_question and "农村" in a.resolved_question
    assert a.question == "那农村呢？"


def test_the_bot_says_needs_context_for_a_follow_up_alone(bot):
    a = bot.ask("那农村呢？")
    assert not a.found and a.reason == "needs_context" and "完整" in a.answer


def test_a_stand_alone_question_after_a_thread_is_answered_as_if_alone(bot):
    thread = ["业主一直不交物业费，物业公司能怎么办？", "那能停水停电吗？"]
    alone, in_thread = bot.ask("社区党建工作联席会议制度由谁牵头？"), bot.ask("社区党建工作联席会议制度由谁牵头？", history=thread)
    assert in_thread.resolved_question is None
    assert [c.clause_id for c in in_thread.citations] == [c.clause_id for c in alone.citations]
