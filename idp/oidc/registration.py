"""Registration asked by a partner: OpenID Connect ``prompt=create`` ("Initiating User
Registration via OpenID Connect 1.0"). The partner's site asks us to create an account;
it gets a code for that NEW account once the person may log in, else an error.

1. ``/oauth/authorize?...&prompt=create`` is validated by Authlib as any request (client,
   exact redirect URI, PKCE, scope; ``prompt=none create`` is ``invalid_request``). Its
   parameters are then kept in a signed cookie of this browser (:data:`COOKIE`, one
   day: as long as the verification link) and the browser goes to
   ``/creer-un-compte``: enrol a company, ask to join one, or follow an invitation.
2. The enrolment and join forms and the invitation note the new account's id in that
   cookie (:func:`note_declarant`); the pages of the steps (request sent, address
   verified in this browser, activation code, invitation accepted) offer "Continuer".
3. ``/creer-un-compte/suite`` goes back to ``/oauth/authorize`` with the kept parameters
   (without ``prompt=create``): Authlib validates them again and issues the code, as for
   a login. For that very request, :func:`intercept` lets it go on only for the noted
   account, logged in (else the login page). One whose address is not verified yet is
   asked to open the link first; one who cannot log in yet (a join request waiting for
   the administrators) is told so, and the button of that page ends the request with
   the error ``registration_pending`` at the client's redirect URI (``access_denied``
   for a request refused, removed or expired): no code.

Bad input never reaches here: Authlib refuses it first (error page or error redirect)
and no cookie is set. The cookie is signed (itsdangerous, the app's secret key) and
holds only the authorization request's own parameters and the new account's id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from idp.auth.login import login_required
from idp.i18n import N_, _
from idp.oidc.server import ResourceOwner, error_redirect
from idp.stores import db
from idp.web.answers import no_store
from partners.services import client_by_id
from rcd_store.enrolment.joins import Standing, standing
from rcd_store.enrolment.people import VERIFY_LIFETIME

bp = Blueprint("registration", __name__)
bp.after_request(no_store)

COOKIE = "idp_inscription"
#: the cookie's longest value (a browser keeps 4096 bytes per cookie, name and attributes
#: included): a request too long to keep is refused at once, as ``invalid_request``
MAX_KEPT = 3000
LIFETIME = int(VERIFY_LIFETIME.total_seconds())
#: the authorization request's parameters kept for the resumption (nothing else)
KEPT = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "ui_locales",
    "acr_values",
    "max_age",
    "login_hint",
)
#: error of a request whose account cannot log in yet (documented in widget/README.md)
PENDING = "registration_pending"
PAGE = "enrolment/registration.html"
WAITING = {
    Standing.AWAITING_APPROVAL: N_(
        "Votre compte n'est pas encore actif : votre demande pour rejoindre votre entreprise "
        "attend la décision de ses administrateurs. Vous serez prévenu par courriel ; vous "
        "pourrez alors vous connecter."
    ),
    Standing.GONE: N_(
        "Ce compte ne peut pas être utilisé : la demande a été refusée, retirée ou a expiré."
    ),
}


@dataclass(frozen=True)
class Registration:
    """A registration under way in this browser: the authorization request's parameters,
    when it started (epoch seconds), and the new account once a form created it."""

    params: dict[str, str]
    started: int
    declarant_id: str | None = None

    def matches(self) -> bool:
        """Whether this request is the one kept (same parameters, no more ``create``)."""
        return all(request.args.get(name) == value for name, value in self.params.items())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="idp.oidc.registration")


def current() -> Registration | None:
    """The registration under way in this browser (a signed, unexpired cookie), or None."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > MAX_KEPT:
        return None
    try:
        data = _serializer().loads(raw, max_age=LIFETIME)
        found = Registration(dict(data["q"]), int(data["t"]), data.get("d"))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    return found


def _dumps(found: Registration) -> str:
    value = {"q": found.params, "t": found.started, "d": found.declarant_id}
    return str(_serializer().dumps(value))


def _keep(response: BaseResponse, found: Registration) -> BaseResponse:
    response.set_cookie(
        COOKIE,
        _dumps(found),
        max_age=LIFETIME,
        httponly=True,
        samesite="Lax",
        path="/",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
    )
    return response


def note_declarant(body: str, declarant_id: str) -> BaseResponse:
    """The page ``body``; with a registration under way, the new account is noted in it."""
    response = Response(body, mimetype="text/html")
    found = current()
    if found is None:
        return response
    return _keep(response, Registration(found.params, found.started, declarant_id))


def partner_name() -> str | None:
    """The partner a registration under way is for (shown on the steps' pages)."""
    found = current()
    client = client_by_id(db.session(), found.params.get("client_id", "")) if found else None
    return client.partner.name if client is not None else None


def _start(grant: Any) -> BaseResponse:
    """``prompt=create`` (a request Authlib has validated): keep it, go to the choices."""
    params = {name: request.args[name] for name in KEPT if name in request.args}
    kept = Registration(params, int(time.time()))
    if len(_dumps(kept)) > MAX_KEPT:
        return redirect(_ended(grant, "invalid_request", "authorization request too long"))
    return _keep(redirect("/creer-un-compte", code=302), kept)


def _ended(grant: Any, error: str, description: str) -> str:
    """Where the request ends with ``error`` (the client's validated redirect URI)."""
    failure = OAuth2Error(
        description=description, state=grant.request.payload.state, redirect_uri=grant.redirect_uri
    )
    failure.error = error
    return dict(error_redirect(failure)[2])["Location"]


def intercept(grant: Any, prompts: set[str], owner: ResourceOwner | None) -> BaseResponse | None:
    """What a registration makes of this authorization request, or None (go on)."""
    if "create" in prompts:
        return _start(grant) if request.method == "GET" else None
    found = current()
    if found is None or found.declarant_id is None or not found.matches():
        return None
    where = standing(db.session(), found.declarant_id)
    if where == Standing.ACTIVE:
        if owner is not None and owner.declarant_id == found.declarant_id:
            return None
        return login_required(request.full_path, force=owner is not None)
    if where == Standing.EMAIL_PENDING:
        return Response(render_template(PAGE, confirm=True), mimetype="text/html")
    error = PENDING if where == Standing.AWAITING_APPROVAL else "access_denied"
    back = _ended(grant, error, "the account cannot log in yet")
    page = render_template(PAGE, waiting=_(WAITING[where]), back=back, error_code=error)
    response = Response(page, mimetype="text/html")
    response.delete_cookie(COOKIE, path="/")
    return response


def _no_registration() -> tuple[str, int]:
    message = _(
        "Aucune création de compte n'est en cours dans ce navigateur : revenez sur le site "
        "du partenaire et recommencez."
    )
    return render_template("error.html", title=_("Créer un compte"), message=message), 400


@bp.get("/creer-un-compte")
def choices() -> BaseResponse | tuple[str, int]:
    """Enrol a company, ask to join one, follow an invitation, or log in."""
    if current() is None:
        return _no_registration()
    return Response(render_template(PAGE, choices=True), mimetype="text/html")


@bp.get("/creer-un-compte/suite")
def resume() -> BaseResponse | tuple[str, int]:
    """Back to the authorization request kept (Authlib validates it again)."""
    found = current()
    if found is None:
        return _no_registration()
    return redirect("/oauth/authorize?" + urlencode(found.params), code=303)


def init_app(app: Flask) -> None:
    """The registration pages, and ``registration_partner()`` for the steps' pages."""
    app.register_blueprint(bp)
    app.jinja_env.globals["registration_partner"] = partner_name
