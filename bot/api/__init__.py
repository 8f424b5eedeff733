"""The HTTP service: the same pipeline and answer contract as the CLI, the chat and admin pages
(``web/``), admission, errors and the usage routes.

May import everything below it: ``bot.pipeline`` and the answer stage, ``bot.usage``, ``bot.training``.
Nothing imports the API but the CLI's ``serve`` (by name, through uvicorn)."""

from bot.api.app import create_app

__all__ = ["create_app"]
