"""The documentation site builds strictly (a broken link or anchor fails), and the pages generated
from the code cover all of it: every setting on the configuration page, every API route on the API page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from bot.api.app import create_app
from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """``mkdocs build --strict`` of the repository's site into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    # Material 9.7+ prints an end-of-life notice when run as `mkdocs`; it is not a build warning.
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                           "--site-dir", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert not re.search(r"^WARNING", proc.stderr, re.M), proc.stderr
    return out


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def test_the_site_builds_strictly_with_every_page(site):
    nav = re.findall(r":\s*([\w-]+)\.md\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    assert len(nav) >= 12
    for name in nav:
        assert (site / ("" if name == "index" else name) / "index.html").exists(), name
    # Offline: the theme must not load web fonts.
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(encoding="utf-8")


def test_the_configuration_page_lists_every_setting_by_its_env_name(site):
    html = _page(site, "configuration")
    rows = dict(re.findall(r"<tr>\s*<td><code>(POLICYBOT_\w+)</code></td>(.*?)</tr>", html, re.S))
    expected = {"POLICYBOT_" + name.upper(): field for name, field in Settings.model_fields.items()}
    assert set(rows) == set(expected), f"missing {set(expected) - set(rows)}, not settings {set(rows) - set(expected)}"
    for env, field in expected.items():
        if field.description:  # the description comes from the model, not from a hand-written table
            first_words = " ".join(field.description.replace("`", "").split()[:3])
            assert first_words in unescape(re.sub(r"<[^>]+>", "", rows[env])), env


def test_the_configuration_page_shows_the_models_defaults(site):
    rows = dict(re.findall(r"<tr>\s*<td><code>(POLICYBOT_\w+)</code></td>(.*?)</tr>", _page(site, "configuration"), re.S))
    assert f"<code>{Settings.model_fields['top_k'].default}</code>" in rows["POLICYBOT_TOP_K"]
    assert f"<code>{Settings.model_fields['feedback_rate'].default}</code>" in rows["POLICYBOT_FEEDBACK_RATE"]


def test_the_api_page_has_every_route_and_schema_of_the_apps_openapi(site):
    spec = create_app(Settings.model_construct()).openapi()
    text = unescape(re.sub(r"<[^>]+>", "", _page(site, "api")))
    operations = [f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops]
    assert len(operations) >= 10
    assert [op for op in operations if op not in text] == []
    html = _page(site, "api")
    for name in spec["components"]["schemas"]:
        assert re.search(rf'<h4 id="schema-{name.lower()}">', html), name


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert any(link.startswith("docs/") for link in local)
    assert [link for link in local if not (ROOT / link).exists()] == []


def test_readme_test_command_is_the_one_ci_runs():
    command = 'pip install -e ".[st,test]" && python -m pytest'
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()[-1]
