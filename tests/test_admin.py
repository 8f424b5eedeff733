"""The maintainers' side through a real server: every admin route and page needs the admin key;
a trainer labels an answer in /admin in real Chromium, exports the labels and `eval` scores them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import expect
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.test_web import ARTIFACTS, browser  # noqa: F401 - fixture: Debian's Chromium

USER = {"Authorization": "Bearer user-key"}
ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, settings, bot):
    """A server with the question log on SQLite, an admin key and a user key; its settings."""
    from bot.api import create_app

    s = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path_factory.mktemp('admin') / 'usage.sqlite3'}",
                                    "admin_key": SecretStr("admin-secret"), "api_key": SecretStr("user-key")})
    app = create_app(s, bot=bot)
    server = LiveServer(app)
    server.app, server.settings = app, s
    yield server
    server.stop()


def _routes(routes) -> list[APIRoute]:
    """Every route of the app, those of included routers too."""
    out = []
    for r in routes:
        out += [r] if isinstance(r, APIRoute) else _routes(getattr(getattr(r, "original_router", None), "routes", []))
    return out


def _admin_routes(app) -> list[tuple[str, str]]:
    return sorted((method, r.path.replace("{answer_id}", "0" * 32)) for r in _routes(app.routes)
                  if r.path.startswith(("/admin", "/v1/admin")) for method in r.methods)


def _ask(server, question: str) -> dict:
    return httpx.post(server.url + "/v1/ask", json={"question": question}, headers=USER, timeout=60).json()


def _logged(server, answer_id: str) -> None:
    for _ in range(60):
        if any(i["id"] == answer_id for i in httpx.get(server.url + "/v1/admin/questions", headers=ADMIN).json()["items"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"answer {answer_id} never reached the log")


def test_every_admin_route_and_page_needs_the_admin_key(served):
    routes = _admin_routes(served.app)
    assert {("GET", "/admin"), ("GET", "/admin/report"), ("PUT", f"/v1/admin/labels/{'0' * 32}")} <= set(routes)
    for method, path in routes:
        url = served.url + path + ("?q=任期" if path.endswith("/clauses") else "")
        body = {"json": {"verdict": "correct"}} if method == "PUT" else {}
        nobody = httpx.request(method, url, **body)
        assert nobody.status_code == 401, (method, path)
        assert nobody.headers["www-authenticate"].startswith("Basic")  # a browser asks for the key
        assert httpx.request(method, url, headers=USER, **body).status_code == 403, (method, path)
        assert httpx.request(method, url, auth=("someone", "user-key"), **body).status_code == 403, (method, path)


def test_a_label_names_a_clause_of_the_index_and_an_answer_of_the_log(served):
    answer = _ask(served, "社区综合服务设施每天开放多长时间？")
    _logged(served, answer["id"])
    put = lambda aid, body: httpx.put(f"{served.url}/v1/admin/labels/{aid}", json=body, headers=ADMIN)  # noqa: E731
    assert put(answer["id"], {"verdict": "wrong", "clause_id": "no-such:clause"}).status_code == 422
    assert put(answer["id"], {"verdict": "wrong"}).status_code == 422
    assert put("0" * 32, {"verdict": "correct"}).status_code == 404
    label = put(answer["id"], {"verdict": "correct"}).json()
    assert label["verdict"] == "correct" and label["admin"].startswith("key:") and "admin-secret" not in json.dumps(label)


def test_the_report_page_is_served_to_admins_for_a_window(served):
    _ask(served, "许昌市今年的低保标准是多少？")
    page = httpx.get(served.url + "/admin/report", params={"since": "2020-01-01T00:00:00Z"}, headers=ADMIN)
    assert page.status_code == 200 and "<h1>policy-bot 使用报告</h1>" in page.text
    assert '<link rel="stylesheet" href="/static/report.css">' in page.text  # the page's CSP allows no inline styles


# A follow-up asked with no thread is refused by a rule (needs_context), though the documents say
# 每届任期五年. (A question the calibrated models refuse would serve this test only while the bot fails it.)
FOLLOW_UP = "那一届干几年？"
NOT_IN_DOCUMENTS = "许昌市今年的低保标准是多少？"  # refused rightly, with the closest clauses listed


def test_a_trainer_labels_a_thumbs_down_answer_in_chromium_and_eval_counts_the_exported_row(served, browser, tmp_path):  # noqa: F811
    wrong, absent = _ask(served, FOLLOW_UP), _ask(served, NOT_IN_DOCUMENTS)
    assert (wrong["found"], wrong["reason"]) == (False, "needs_context") and not absent["found"] and absent["related"]
    for answer, comment in ((wrong, "法里写了任期"), (absent, "文件里应该有吧")):
        assert httpx.post(served.url + "/v1/feedback", json={"answer_id": answer["id"], "rating": "down", "comment": comment},
                          headers=USER).status_code == 201
    _ask(served, "社区党建工作联席会议制度由谁牵头？")
    _logged(served, wrong["id"])
    time.sleep(1.2)  # the feedback rows' batch

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                  http_credentials={"username": "张老师", "password": "admin-secret"})
    page = context.new_page()
    try:
        page.goto(served.url + "/admin")
        page.click("button[data-show=down]")
        expect(page.locator(".item")).to_have_count(2)
        # A not-found answer with closest clauses shows them and a clause search at once.
        listed = page.locator(".item", has=page.locator(".question", has_text=NOT_IN_DOCUMENTS))
        expect(listed.locator(".picker li")).to_have_count(len(absent["related"]))
        item = page.locator(".item", has=page.locator(".question", has_text=FOLLOW_UP))
        expect(item.locator(".comment")).to_contain_text("法里写了任期")
        item.locator("button.wrong").click()  # action 1
        item.locator(".picker input").fill("居民委员会每届任期五年")  # action 2: results follow the typing
        item.locator(".picker li", has_text="第九条第四款").first.locator("button").click()  # action 3
        expect(item.locator(".label-state")).to_contain_text("已标注：回答错了，正确条款：《河南省实施《中华人民共和国城市居民委员会组织法》办法》 第九条第四款")
        expect(item.locator(".label-state")).to_contain_text("张老师")
        ARTIFACTS.mkdir(exist_ok=True)  # ignored by git (.gitignore)
        page.screenshot(path=str(ARTIFACTS / "admin-labels.png"), full_page=True)
        session = (datetime.now(timezone.utc) - timedelta(hours=3)).isoformat(timespec="minutes").replace("+00:00", "Z")
        page.goto(f"{served.url}/admin/report?since={session}")  # a training session: charted per hour
        expect(page.locator("h2").nth(0)).to_have_text("每小时的提问与找到答案的比例")
        expect(page.locator("h1")).to_have_text("policy-bot 使用报告")
        expect(page.locator("img.chart").first).to_be_visible()
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    finally:
        context.close()

    s = served.settings
    env = os.environ | {"POLICYBOT_INDEX_DIR": str(s.index_dir), "POLICYBOT_CORPUS_DIR": str(s.corpus_dir),
                        "POLICYBOT_DATABASE_URL": s.database_url}
    rows = tmp_path / "rows.jsonl"
    export = subprocess.run([sys.executable, "-m", "bot", "labels", "export", "--out", str(rows)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert export.returncode == 0, export.stderr
    scored = subprocess.run([sys.executable, "-m", "bot", "eval", "--gold", str(rows), "--json"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    row = next(r for r in result["questions"] if r["question"] == FOLLOW_UP)
    assert row["answerable"] and "regression" in row["tags"] and result["n"] == len(rows.read_text().splitlines())
    assert row["failure"].startswith("false_refusal")  # still wrong: the regression row shows it until a rebuild fixes it


def test_an_answered_question_is_labelled_wrong_in_three_actions_and_correct_in_one(served, browser):  # noqa: F811
    answered = _ask(served, "城市社区综合服务设施覆盖率到2025年的目标值是多少？")
    assert answered["found"]
    _logged(served, answered["id"])
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                  http_credentials={"username": "李老师", "password": "admin-secret"})
    page = context.new_page()
    try:
        page.goto(served.url + "/admin")
        item = page.locator(".item", has=page.locator(".question", has_text="城市社区综合服务设施覆盖率到2025年的目标值是多少？")).first
        item.locator("button.wrong").click()  # action 1
        item.locator(".picker input").fill("千人示范培训")  # action 2
        item.locator(".picker li").first.locator("button").click()  # action 3
        expect(item.locator(".label-state")).to_contain_text("已标注：回答错了，正确条款：")
        expect(item.locator(".label-state")).to_contain_text("李老师")
        item.locator("button.correct").click()  # changed back, in one action
        expect(item.locator(".label-state")).to_contain_text("已标注：回答正确")
    finally:
        context.close()
    labels = [i["label"] for i in httpx.get(served.url + "/v1/admin/questions", headers=ADMIN).json()["items"]
              if i["id"] == answered["id"]]
    assert labels[0]["verdict"] == "correct" and labels[0]["admin_name"] == "李老师"
