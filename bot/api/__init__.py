"""The HTTP service: the same pipeline and answer contract as the CLI."""

from bot.api.app import create_app

__all__ = ["create_app"]
