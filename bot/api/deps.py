"""Shared request dependencies: the loaded pipeline and the optional API key."""

from __future__ import annotations

import base64
import secrets

from fastapi import Request
from pydantic import SecretStr

from bot.api.errors import APIError
from bot.config import Settings
from bot.pipeline import PolicyBot


async def get_bot(request: Request) -> PolicyBot:
    bot = getattr(request.app.state, "bot", None)
    if bot is None:
        error = getattr(request.app.state, "load_error", None)
        message = f"the index is not available: {error}" if error else "the index is still loading; retry shortly"
        raise APIError(503, "not_ready", message, type_="server_error")
    return bot


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value; empty when there is none."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


# Sent with a 401 of the admin routes and pages, so a browser asks for the key (name: anything).
CHALLENGE = {"WWW-Authenticate": 'Basic realm="policy-bot admin", charset="UTF-8"'}


def admin_credentials(authorization: str) -> tuple[str, str | None]:
    """The key (and name) of ``Authorization: Bearer <key>``, or of ``Basic`` (name:key), which a
    browser asks for when it opens /admin; empty when neither is sent."""
    token = bearer_token(authorization)
    if token:
        return token, None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "", None
    try:
        name, _, key = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", None
    return key, (name.strip()[:64] or None)


def _matches(token: str, key: SecretStr) -> bool:
    return secrets.compare_digest(token.encode(), key.get_secret_value().encode())


def key_error(path: str, authorization: str, settings: Settings) -> APIError | None:
    """Who may call ``path``, decided from the Authorization header alone (before any body byte is read):
    /v1/admin (and /metrics unless ``metrics_public``) need the admin key, 401 without a token and 403
    with another; other /v1 routes need ``POLICYBOT_API_KEY`` when it is set (401). None: allowed."""
    if path.startswith("/v1/admin") or (path == "/metrics" and not settings.metrics_public):
        token, _ = admin_credentials(authorization)
        if not token:
            return APIError(401, "admin_key_required", "send 'Authorization: Bearer <admin key>'", type_="authentication_error",
                            headers=CHALLENGE)
        if settings.admin_key is None or not _matches(token, settings.admin_key):
            return APIError(403, "forbidden", "this key may not read the question log", type_="permission_error")
        return None
    token = bearer_token(authorization)
    if path.startswith("/v1/") and settings.api_key is not None and not (token and _matches(token, settings.api_key)):
        return APIError(401, "invalid_api_key", "missing or wrong API key: send 'Authorization: Bearer <key>'",
                        type_="authentication_error")
    return None
