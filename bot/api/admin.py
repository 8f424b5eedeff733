"""The maintainers' pages, behind the admin key: ``/admin`` (label logged answers) and
``/admin/report`` (the usage report). A browser opening them is asked for the key (HTTP Basic:
any name, the key as password; the name is recorded with the labels)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.api.errors import APIError
from bot.api.usage import Admin, clause_names, get_log, log_store, require_admin
from bot.usage import report
from bot.usage.questionlog import QuestionLog
from bot.usage.store import as_utc, now

pages = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(require_admin)])


@pages.get("", response_class=HTMLResponse)
def admin_page(request: Request, who: Annotated[Admin, Depends(require_admin)]) -> HTMLResponse:
    """Logged questions with filters (unanswered, 👎, a document, a time window) and one-click labels."""
    loaded = request.app.state.bot
    documents = sorted(((d.id, d.title) for d in loaded.index.documents.values()), key=lambda d: d[1]) if loaded else []
    html = report.template("admin.html.j2").render(documents=documents, who=who)
    return HTMLResponse(html)


@pages.get("/report", response_class=HTMLResponse)
def report_page(request: Request, log: Annotated[QuestionLog | None, Depends(get_log)],
                since: Annotated[datetime | None, Query(description="default: 7 days ago")] = None,
                until: Annotated[datetime | None, Query(description="default: now")] = None) -> HTMLResponse:
    """The usage report (as ``policy-bot report --format html``) for a time window."""
    settings = request.app.state.settings
    store = log_store(log)
    start = as_utc(since) if since else now() - timedelta(days=7)
    try:
        data = report.build(store, start, until and as_utc(until), names=clause_names(request), tz=settings.timezone)
    except SQLAlchemyError as exc:
        raise APIError(503, "store_unavailable", "the question log is unavailable; retry later", type_="server_error") from exc
    return HTMLResponse(report.html_page(data, stylesheet="/static/report.css"))
