"""The command line: its output and exit codes (in-process, on the session's index), and one run
as a real process to prove stdout carries nothing but the JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bot import cli, config
from bot.cli import answering, training


@pytest.fixture()
def run(bot, settings, monkeypatch):
    """Invoke the CLI in this process with the session's settings and loaded pipeline."""
    monkeypatch.setenv("POLICYBOT_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("POLICYBOT_CORPUS_DIR", str(settings.corpus_dir))
    for commands in (answering, training):  # the command modules that load the pipeline
        monkeypatch.setattr(commands, "load_bot", lambda **_: bot)
    config.get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(cli.app, list(args))
    config.get_settings.cache_clear()


def test_ask_json_in_a_real_process_prints_only_the_contract(bot, settings):
    env = os.environ | {"POLICYBOT_INDEX_DIR": str(settings.index_dir), "POLICYBOT_CORPUS_DIR": str(settings.corpus_dir)}
    out = subprocess.run([sys.executable, "-m", "bot", "ask", "--json", "城市社区综合服务设施覆盖率到2025年的目标值是多少？"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["found"] is True
    assert data["citations"][0]["clause_id"] == "xc-plan:b1.r2"


def test_ask_prints_answer_and_citations(run):
    out = run("ask", "社区党建工作联席会议制度由谁牵头？")
    assert out.exit_code == 0, out.output
    assert "街道党工委牵头" in out.stdout and "[1]" in out.stdout and "许政办〔2023〕8号" in out.stdout


def test_unanswerable_question_says_not_found(run):
    out = run("ask", "--json", "许昌市今年的低保标准是多少？")
    data = json.loads(out.stdout)
    assert data["found"] is False and data["citations"] == [] and data["reason"]


def test_empty_question_is_a_usage_error(run):
    out = run("ask", "--json", "   ")
    assert out.exit_code == 2
    assert json.loads(out.stdout) == {"error": "question is empty"}


def test_search_shows_each_retrievers_rank(run):
    out = run("search", "灾害信息员", "--top-k", "3")
    assert out.exit_code == 0, out.output
    assert "xc-plan:b3.i13" in out.stdout


def test_index_reports_up_to_date(run):
    out = run("index")
    assert out.exit_code == 0, out.output
    assert "up to date" in out.stdout


def test_quiz_writes_json(run):
    out = run("quiz", "--n", "4", "--format", "json", "--seed", "5")
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 4


@pytest.mark.parametrize("since", ["999999999d", "99999999999999999999h", "0000-01-01", "yesterday"])
def test_a_bad_report_since_is_a_one_line_error(run, monkeypatch, tmp_path, since):
    monkeypatch.setenv("POLICYBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'usage.sqlite3'}")
    config.get_settings.cache_clear()
    result = run("report", "--since", since)
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error: --since/--until/--before")


def test_a_bad_ask_level_is_a_one_line_error(run):
    result = run("ask", "社区服务设施开放多久？", "--level", "\udcff")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error: --level")
