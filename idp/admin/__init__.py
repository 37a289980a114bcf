"""The administration pages (``/administration/...``): a company's administrators list
its establishments and declarants, invite declarants, set habilitations in a matrix,
suspend, reactivate or remove declarants, and name or hand over administrators; the
invitee's acceptance page (``/invitation``). The rules live in
:mod:`rcd_store.administration`; these modules only read forms and render pages."""

from __future__ import annotations

from flask import Flask

from idp.admin import actions, pages  # noqa: F401  (their routes are on ``bp``)
from idp.admin.common import bp
from idp.admin.invitation import bp as invitation_bp


def init_app(app: Flask) -> None:
    """Register the administration and invitation blueprints."""
    app.register_blueprint(bp)
    app.register_blueprint(invitation_bp)
