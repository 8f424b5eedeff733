"""The command line, run as a user would: a real process against the session's index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def run(bot, settings):
    env = os.environ | {"POLICYBOT_INDEX_DIR": str(settings.index_dir), "POLICYBOT_CORPUS_DIR": str(settings.corpus_dir)}

    def _run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, timeout=120)

    return _run


def test_ask_json_prints_only_the_contract(run):
    out = run("ask", "--json", "城市社区综合服务设施覆盖率到2025年的目标值是多少？")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["found"] is True
    assert data["citations"][0]["clause_id"] == "xc-plan:b1.r2"


def test_ask_prints_answer_and_citations(run):
    out = run("ask", "社区党建工作联席会议制度由谁牵头？")
    assert out.returncode == 0, out.stderr
    assert "街道党工委牵头" in out.stdout and "[1]" in out.stdout and "许政办〔2023〕8号" in out.stdout


def test_unanswerable_question_says_not_found(run):
    out = run("ask", "--json", "许昌市今年的低保标准是多少？")
    data = json.loads(out.stdout)
    assert data["found"] is False and data["citations"] == [] and data["reason"]


def test_empty_question_is_a_usage_error(run):
    out = run("ask", "--json", "   ")
    assert out.returncode == 2
    assert json.loads(out.stdout) == {"error": "question is empty"}


def test_search_shows_each_retrievers_rank(run):
    out = run("search", "灾害信息员", "--top-k", "3")
    assert out.returncode == 0, out.stderr
    assert "xc-plan:b3.i13" in out.stdout


def test_index_reports_up_to_date(run):
    out = run("index")
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout
