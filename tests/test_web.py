"""The chat page in a real headless Chromium (Debian's, driven by Playwright): ask, read, expand."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    # .ci/run installs Debian's chromium; a missing browser is a failure, not a skip.
    assert shutil.which(CHROMIUM), f"{CHROMIUM} missing: apt-get install chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(live_server.url + "/")
    yield page
    context.close()


def _ask(page, question: str) -> None:
    page.fill("#question", question)
    page.click("#send")


def test_answer_streams_in_with_a_citation_that_expands(page):
    _ask(page, "社区综合服务设施每天开放多长时间？")
    marker = page.locator(".msg.bot .marker").first
    expect(marker).to_be_visible(timeout=15_000)
    expect(page.locator(".msg.bot .answer").first).to_contain_text("8小时")
    marker.click()
    cite = page.locator(".citation").first
    expect(cite).to_have_attribute("open", "")
    expect(cite.locator("blockquote")).to_contain_text("开放时间每天不少于8小时")
    expect(cite.locator(".section").first).to_contain_text("二、主要任务 > (四)创新社区服务机制")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-answer.png"), full_page=True)


def test_unanswerable_question_shows_the_not_found_state(page):
    _ask(page, "许昌市今年的低保标准是多少？")
    expect(page.locator(".msg.bot.notfound .badge")).to_have_text("未在语料中找到", timeout=15_000)
    expect(page.locator(".msg.bot .marker")).to_have_count(0)


def test_a_refusal_still_shows_the_closest_clauses_marked_as_not_answering(page):
    _ask(page, "社区工作者每年要培训多少学时？")
    related = page.locator(".msg.bot.notfound .related")
    expect(related).to_contain_text("相关条款（未直接回答）", timeout=15_000)
    expect(related.locator(".citation")).not_to_have_count(0)
    related.locator("summary").first.click()
    expect(related.locator("blockquote").first).to_contain_text("培训")
    page.screenshot(path=str(ARTIFACTS / "chat-related.png"), full_page=True)


def test_example_question_button_asks_it(page):
    page.locator(".example").first.click()
    expect(page.locator(".msg.user").first).to_have_text("社区党建工作联席会议制度由谁牵头？")
    expect(page.locator(".msg.bot .answer").first).to_contain_text("街道党工委牵头", timeout=15_000)


def test_copy_button_copies_the_answer(browser, live_server):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(live_server.url + "/")
    _ask(page, "灾害信息员每个村设几名")
    page.locator(".tools .copy").first.click(timeout=15_000)
    expect(page.locator(".tools .copy").first).to_have_text("已复制")
    assert "灾害信息员" in page.evaluate("navigator.clipboard.readText()")
    context.close()


def test_works_on_a_phone_sized_screen(browser, live_server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(live_server.url + "/")
    _ask(page, "城市社区综合服务设施覆盖率到2025年的目标值是多少？")
    expect(page.locator(".msg.bot .marker").first).to_be_visible(timeout=15_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page scrolls sideways on a phone ({width}px)"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-phone.png"), full_page=True)
    context.close()


def test_practice_mode_reveals_the_key_and_the_clause(page):
    page.click("#practice")
    cards = page.locator(".quiz")
    expect(cards).to_have_count(5, timeout=15_000)
    first = cards.first
    first.locator(".choices button, .choices .check").first.click()
    expect(first.locator(".verdict")).to_have_text(re.compile("✓ 回答正确|✗ 正确答案：.+"), timeout=5_000)
    expect(first.locator("blockquote")).to_be_visible()
    expect(first.locator(".section")).to_contain_text("出处：")


def test_a_three_turn_thread_is_understood_and_a_new_thread_forgets_it(page):
    _ask(page, "千人示范培训，市级每年培训谁？")
    expect(page.locator(".msg.bot .answer").nth(0)).to_contain_text("社区党组织书记", timeout=15_000)
    _ask(page, "那县里呢？")
    second = page.locator(".msg.bot").nth(1)
    expect(second.locator(".resolved")).to_contain_text("按「", timeout=15_000)
    expect(second.locator(".answer")).to_contain_text("县级每年组织社区党组织书记进行全员培训")
    _ask(page, "乡镇呢？")
    third = page.locator(".msg.bot").nth(2)
    expect(third.locator(".answer")).to_contain_text("乡级每年组织社区工作者进行全员培训", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "chat-thread.png"), full_page=True)
    page.click("#new-thread")
    expect(page.locator(".msg")).to_have_count(0)
    _ask(page, "那农村呢？")
    expect(page.locator(".msg.bot.notfound .answer")).to_contain_text("前面的对话", timeout=15_000)


def test_thumbs_down_with_a_comment_reaches_the_admin_api(browser, settings, bot, tmp_path):
    import httpx
    from pydantic import SecretStr

    from bot.api import create_app
    from tests.conftest import LiveServer

    s = settings.model_copy(update={"admin_key": SecretStr("admin-secret"), "database_url": f"sqlite:///{tmp_path / 'u.sqlite3'}"})
    server = LiveServer(create_app(s, bot=bot))
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        _ask(page, "社区综合服务设施每天开放多长时间？")
        expect(page.locator(".msg.bot .feedback .down")).to_be_visible(timeout=15_000)
        page.click(".msg.bot .feedback .down")
        page.fill(".msg.bot .feedback textarea", "没说周末开不开")
        page.click(".msg.bot .feedback form button")
        expect(page.locator(".msg.bot .feedback .rated")).to_have_text("谢谢反馈")
        page.screenshot(path=str(ARTIFACTS / "chat-feedback.png"), full_page=True)
        items = []
        for _ in range(40):
            items = httpx.get(server.url + "/v1/admin/feedback", headers={"Authorization": "Bearer admin-secret"}).json()["items"]
            if items:
                break
            page.wait_for_timeout(250)
        assert items[0]["rating"] == "down" and items[0]["comment"] == "没说周末开不开"
        assert items[0]["question"] == "社区综合服务设施每天开放多长时间？"
    finally:
        context.close()
        server.stop()
