"""The executor console (``/``, ``/signin``, ``/static``): a placeholder until helper CONSOLE's
package replaces this file. ``create_app`` calls ``install`` after the API's routes."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the console's pages and assets on ``app`` (nothing yet)."""
