"""Shared request dependencies: the loaded pipeline and the optional API key."""

from __future__ import annotations

import secrets

from fastapi import Request

from bot.api.errors import APIError
from bot.config import Settings
from bot.pipeline import PolicyBot


def get_bot(request: Request) -> PolicyBot:
    bot = getattr(request.app.state, "bot", None)
    if bot is None:
        error = getattr(request.app.state, "load_error", None)
        message = f"the index is not available: {error}" if error else "the index is still loading; retry shortly"
        raise APIError(503, "not_ready", message, type_="server_error")
    return bot


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; empty when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def require_api_key(request: Request) -> None:
    """With ``POLICYBOT_API_KEY`` set, /v1 routes need ``Authorization: Bearer <key>``."""
    key = request.app.state.settings.api_key
    if key is None:
        return
    token = bearer_token(request)
    if not token or not secrets.compare_digest(token.encode(), key.get_secret_value().encode()):
        raise APIError(401, "invalid_api_key", "missing or wrong API key: send 'Authorization: Bearer <key>'",
                       type_="authentication_error")
