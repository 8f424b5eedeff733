"""Questions as workers ask them: a case told first, then the ask; groups the documents treat
apart; figures the documents leave to others; exam statements judged against the text."""

from __future__ import annotations

import numpy as np
import pytest

from bot.answer.calibrated import fit_pairwise
from bot.answer.choices import judge
from bot.answer.decision import _punishes
from bot.answer.evidence import Evidence
from bot.answer.query import understand
from bot.answer.retrieval import Hit
from bot.models import Clause


def test_a_number_that_only_describes_the_case_does_not_refuse_the_ask(bot):
    a = bot.ask("我是社区网格员，楼里住着6户独居老人，最大的92岁。规划对特殊困难老年人的月探访率有什么目标？")
    assert a.found and "100%" in a.answer


def test_a_year_the_ask_names_must_be_in_the_clause(bot):
    a = bot.ask("2022年社会工作者占常住人口比例是多少？")
    assert not a.found and a.reason == "unmatched_number"


def test_a_clause_on_the_other_group_of_a_pair_is_a_contrast(bot):
    m = bot.matcher
    pairs = [p for p in m._contrasts if "农村" in p[0]]
    urban, both = "xc-plan:b1.r2", "central-community-governance-2017:s4.c2.t1.x1"  # 城市 row; 城乡 clause
    assert m.contrasted(pairs, urban)
    assert not m.contrasted(pairs, both)


def test_an_ask_that_names_both_groups_of_a_pair_contrasts_neither(bot):
    m, urban = bot.matcher, "xc-plan:b1.r2"  # the 城市 row: the other group for a 农村 ask, half the answer for both
    rural_only = m.weigh(understand("农村社区综合服务设施覆盖率目标是多少"))
    both = m.weigh(understand("农村和城市社区综合服务设施覆盖率目标分别是多少"))
    assert m.contrasted(rural_only.asked_groups, urban)
    assert not m.contrasted(both.asked_groups, urban)


def test_a_group_named_one_way_in_the_ask_and_another_in_the_clause_is_still_a_contrast(bot):
    # "居委会" in the ask, "村民委员会" in the clause: the same pair of groups, named differently.
    m = bot.matcher
    ask = m.weigh(understand("社区居委会换届前要不要先审计？由哪个部门来审？"))
    assert m.contrasted(ask.asked_groups, "henan-villagers-committee-measures:a18")  # "该届村民委员会"
    assert not m.contrasted(ask.asked_groups, "urban-rc-law:a8.k1")  # the urban law's 居民委员会


def test_a_body_the_documents_treat_apart_is_another_group(bot):
    # The urban law's 居委会 and the property regulation's 业主委员会 are different bodies: the
    # latter's hand-over deadline does not answer a question about the former.
    asked_rc = bot.ask("居委会换届以后，老班子要在几天内把印章交给新班子？")
    assert not asked_rc.found and asked_rc.reason == "other_group"
    asked_owners = bot.ask("业委会换届以后，老的业委会要在几天内把印章和档案交给新一届？")
    assert asked_owners.found and asked_owners.citations[0].clause_id == "henan-property-regs:a33.k2"


def test_a_length_asked_quotes_the_item_that_states_it(bot):
    # 第十二条's first item is about banned breeds; the leash's length is in another item.
    a = bot.ask("遛狗的绳子最长能多长？")
    assert a.found and "一米五" in a.answer


def test_a_fine_for_conduct_the_penalty_names_by_number_is_found(bot):
    # "违反本条例第十条第四项规定的，处以五十元罚款": 遮阳伞 is only in 第十条.
    a = bot.ask("电动车装遮阳伞罚多少钱？")
    assert a.found and a.citations[0].clause_id == "xuchang-civility-regs:a35" and "五十元罚款" in a.answer


@pytest.mark.parametrize(("question", "punished"), [("电动车装遮阳伞罚多少钱？", True), ("骑电动车不戴头盔罚多少钱？", False)])
def test_a_penalty_leads_only_for_the_item_of_the_conduct_it_names(bot, question, punished):
    # 第三十五条 names 第十条's items 四 (遮阳篷), 七 and 八, not item 三 (头盔): no fine of another item.
    evidence, _ = bot.decider.candidates(understand(question), 5, None)
    by_id = {e.hit.clause.id: e for e in evidence}
    conduct, penalty = by_id["xuchang-civility-regs:a10"], by_id["xuchang-civility-regs:a35"]
    assert _punishes(penalty.hit.clause, conduct, bot.matcher) is punished


def test_a_which_ones_ask_is_not_answered_by_a_clause_that_names_none(bot):
    # "推动3个左右县(市、区)…" gives a count, not the counties.
    a = bot.ask("规划里说推动3个左右县（市、区）发展社区托育，具体是哪几个县？")
    assert not a.found and a.reason == "no_list"


def test_a_which_ones_ask_is_answered_by_a_clause_that_lists(bot):
    a = bot.ask("村级综合服务设施建设要整合哪些现有场地")  # "整合利用村级组织活动场所等现有设施和场地"
    assert a.found and a.citations[0].clause_id == "xc-plan:b4.i1"


def test_an_ask_counting_the_things_it_wants_named_is_answered_by_as_many_items(bot):
    # 专栏4's two items are two clauses, neither of which lists: together they name the two asked for.
    a = bot.ask("补短板工程包括哪两项")
    assert a.found and {c.clause_id for c in a.citations} >= {"xc-plan:b4.i1", "xc-plan:b4.i2"}


def test_the_other_group_asked_after_na_is_a_contrast(bot):
    # The plan's table has the urban figure only: the case told before "，那" is not the ask.
    a = bot.ask("规划说城市社区政务通用自助服务一体机要全覆盖，那农村社区的一体机覆盖率目标是多少？")
    assert not a.found and a.reason == "other_group"


def test_a_figure_written_in_chinese_numerals_with_its_measure_is_a_figure(bot):
    a = bot.ask("业委会的办公室最小得多大？")  # "其面积不低于二十平方米"
    assert a.found and a.citations[0].clause_id.startswith("henan-property-regs:a11") and "二十平方米" in a.answer


def test_an_allowance_left_to_the_local_government_is_delegated(bot):
    a = bot.ask("居委会老主任干了十五年以上，退下来没有固定收入，每个月能领多少生活补贴？")
    assert not a.found and a.reason == "delegated" and "另行规定" in a.answer
    assert a.citations[0].clause_id == "henan-urban-rc-measures:a19.k2"


def test_an_exam_statement_contradicting_the_text_is_the_wrong_one(bot):
    a = bot.ask("根据《中华人民共和国村民委员会组织法》，下列说法错误的是（ ）A. 村民委员会每届任期五年 "
                "B. 村民委员会成员可以连选连任 C. 村民委员会成员不得连选连任 D. 届满应当及时举行换届选举")
    assert a.found and a.choice == "C" and a.answer.startswith("答案：C")


def test_several_right_statements_are_all_named(bot):
    a = bot.ask("依照《村民委员会组织法》，下列说法正确的有（多选）A. 村民委员会每届任期五年 "
                "B. 村民委员会成员可以连选连任 C. 村民委员会成员不得连选连任 D. 村民委员会每届任期十年")
    assert a.found and a.choice == "AB" and "villagers-committee-law:a11.k2" in [c.clause_id for c in a.citations]


def test_a_penalty_article_is_quoted_at_the_item_fining_the_conduct_asked_about(bot):
    # 第三十五条 fines nine items by number only; "违反本条例第十七条规定的" is the one on 广场舞 noise.
    clause = next(c for c in bot.index.clauses if c.id == "xuchang-civility-regs:a35")
    quote = bot.renderer._quote(understand("小区广场舞晚上十点多还放音乐，劝了不听，按许昌的条例怎么罚？"), clause)
    assert "违反本条例第十七条规定的，给予警告；警告后不改正的，处以二百元以上五百元以下罚款" in quote
    assert "第十条第" not in quote  # no other item's fine beside it


def test_a_plan_paragraph_numbered_like_an_item_is_still_quoted_by_its_sentences(bot):
    # "（一）充分发挥基层党组织领导核心作用。…" is a 300-character paragraph, not an article's item.
    clause = next(c for c in bot.index.clauses if c.id == "central-community-governance-2017:s2.c1.t1.x1")
    quote = bot.renderer._quote(understand("街道党工委的工作重心要转移到哪些方面上来？"), clause)
    assert quote.startswith("（一）充分发挥基层党组织领导核心作用。……") and len(quote) < len(clause.text)


def test_the_pairwise_ranker_recovers_a_known_ordering():
    # Reference: candidates whose relevance follows a known linear score; the fitted ranker must put
    # the relevant candidate first about as often as that score does.
    rng = np.random.default_rng(1)
    true_w = np.array([2.0, -1.0, 0.0])
    x, y, groups = [], [], []
    for g in range(200):
        cand = rng.normal(size=(8, 3))
        x.append(cand)
        y += [float(i == int(np.argmax(cand @ true_w))) for i in range(8)]
        groups += [g] * 8
    x, y, groups = np.vstack(x), np.array(y), np.array(groups)
    mean, std, w = fit_pairwise(x, y, groups, c=1.0)
    score = ((x - mean) / std) @ w
    top = [int(np.argmax(score[groups == g])) == int(np.argmax(y[groups == g])) for g in range(200)]
    assert np.mean(top) >= 0.9 and w[0] > 0 > w[1]


def test_an_option_naming_another_share_of_votes_than_the_clause_is_false(bot):
    # "三分之二" against the clause's "半数": a fraction written in Chinese numerals is a figure too.
    clause = next(c for c in bot.index.clauses if c.id == "henan-property-regs:a28.k3")  # "…全体组成人员半数以上同意"
    ev = Evidence(Hit(clause, 1.0), 0.2, False, True, True, [], [])
    assert judge("业主委员会作出决定须经全体组成人员三分之二以上同意", ev, bot.matcher).conflict
    assert not judge("业主委员会作出决定须经全体组成人员半数以上同意", ev, bot.matcher).conflict


def test_an_option_allowing_what_the_clause_no_longer_allows_is_false_and_its_neighbour_is_not(bot):
    # "…各职能部门不再单独组织考核评比活动,取消对社区工作的“一票否决”事项。"
    clause = next(c for c in bot.index.clauses if c.id == "xc-plan:s2.c4.i2")
    ev = Evidence(Hit(clause, 1.0), 0.2, False, True, True, [], [])
    assert judge("各职能部门可以单独组织对社区工作的考核评比活动", ev, bot.matcher).conflict
    # The phrase beside it has the 不再; this option's own phrase does not.
    assert not judge("取消对社区工作的“一票否决”事项", ev, bot.matcher).conflict


def test_of_options_that_each_hold_somewhere_the_one_whose_clause_answers_the_stem_is_chosen(bot):
    # Each body is responsible for something in the regulation; only one for registration.
    a = bot.ask("按照河南的规定，志愿者注册和志愿服务组织登记归谁管？A. 由县级以上精神文明建设指导机构负责 "
                "B. 由县级以上人民政府民政部门负责 C. 由乡镇人民政府、街道办事处负责 D. 由工会负责")
    assert a.found and a.choice == "B"
    assert "henan-volunteer-service-regs:a5.k2" in [c.clause_id for c in a.citations]


def test_a_blank_in_the_stem_takes_the_option_that_reads_as_the_clause_does(bot):
    a = bot.ask("依照《河南省物业管理条例》，业主委员会每届任期不超过（ ）年。A. 二 B. 三 C. 五 D. 十")
    assert a.found and a.choice == "C" and "henan-property-regs:a28.k1" in [c.clause_id for c in a.citations]


def test_a_blank_two_laws_fill_alike_is_read_in_the_law_the_stem_names(bot):
    # The village law: "共三至七人组成"; the urban law: "共五至九人组成".
    a = bot.ask("依照《城市居民委员会组织法》，居民委员会由主任、副主任和委员共（ ）人组成。A. 三至五 B. 三至七 C. 五至九 D. 七至九")
    assert a.found and a.choice == "C" and a.citations[0].clause_id == "urban-rc-law:a7"


def test_list_items_are_members_of_the_list_the_stem_names_not_of_the_one_beside_it(bot):
    # One sentence of the plan names both lists: "…业主委员会、物业服务企业、楼栋长…“六位一体”和
    # 行政村党组织、村民委员会、村务监督委员会…经济合作社“五位一体”".
    urban = bot.ask("按照许昌市规划，城市社区“六位一体”组织体系包括下列哪些？（多选）A. 居民委员会 B. 村务监督委员会 "
                    "C. 楼栋长 D. 经济合作社")
    assert urban.found and urban.choice == "AC"
    not_rural = bot.ask("按照许昌市规划，下列不属于行政村“五位一体”组织体系的是（ ）A. 村民委员会 B. 物业服务企业 "
                        "C. 村务监督委员会 D. 经济合作社")
    assert not_rural.found and not_rural.choice == "B"


def test_a_list_question_whose_options_are_all_in_the_list_is_not_answered_with_no_letter(bot):
    # Asked which do not belong, with every option in the list: no letter is right, and "" is no answer.
    a = bot.ask("按照许昌市规划，下列不属于行政村“五位一体”组织体系的有（ ）A. 村民委员会 B. 村务监督委员会 C. 经济合作社")
    assert a.choice != ""


def test_a_blank_at_the_start_of_the_stem_has_no_neighbours_before_it():
    from bot.answer.choices import _cloze
    from bot.answer.query import Choice

    clause = Clause(id="d:a1", doc_id="d", kind="article", headings=[], section="", ref="第一条", start=0, end=7,
                    text="乙方案已经废止")
    ev = Evidence(Hit(clause, 1.0), 0.2, False, True, True, [], [])
    assert _cloze(Choice(stem="（ ）应当公示", options={"A": "甲方案", "B": "乙方案"}), [ev], set()) == (None, None)
