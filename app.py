"""``gunicorn 'app:create_app()'`` and ``flask --app app`` in a checkout (not installed)."""

from idp.factory import create_app

__all__ = ["create_app"]
