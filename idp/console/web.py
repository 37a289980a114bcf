"""The console's blueprint with every page module's routes on it."""

from __future__ import annotations

from flask import Flask

from idp.console import (  # noqa: F401  (routes on bp)
    client_pages,
    partner_pages,
    saml_pages,
    theme_pages,
)
from idp.console.common import bp


def init_app(app: Flask) -> None:
    """Register the console's blueprint."""
    app.register_blueprint(bp)
