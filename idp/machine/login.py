"""DSN-style machine login for payroll software: ``POST /authentifier/1.0/``.

Body (``application/xml``, 64 KB at most)::

    <identifiants><siret/><nom/><prenom/><motdepasse/><service/></identifiants>

parsed with ``token_suite._xmldsig.parse_xml`` (no DTD, no entity, a DOCTYPE is
refused: stops XXE and entity bombs). The service is named by its code or its
numeric identifier. The answer (``text/plain``) is an Interops-R JWT signed by the
operator, audience = the identifier of the partner hosting the service, lifetime
``TOKEN_LIFETIME_SECONDS`` (5 minutes by default), carrying the PAGM and
habilitations of that service only. It is then presented as
``Authorization: DSNLogin jeton=<token>``; ``GET /authentifier/1.0/verifier``
checks it (signature, issuer, expiry, audience of a known service host) and
answers the claims as JSON. The token may be presented several times within its
life (it stands for a login, as in the DSN protocol), so no replay check there.

Failures: 401 with ``WWW-Authenticate: DSNLogin error="..."`` (``identifiants``,
``service``, ``jeton``, ``double_authentification``), 400 for a malformed body, 413
for a body too large, 403 for a locked account (the same lockout and per-account
count as the login page; attempts are reserved before the password is checked, and
the account-wide lock holds from every address: no second factor follows here). A
declarant with a second factor gets no token with the password alone
(``double_authentification``). CSRF-exempt: no cookie is involved.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.auth.login import AuthResult, authenticate, by_siret
from idp.auth.throttle import throttle
from idp.oidc.server import own_trust
from idp.stores import db
from idp.tokens.issuing import DSN_LOGIN_TYP, token_service, vector_for
from idp.web import csrf
from idp.web.answers import no_store
from idp.web.credentials import presented
from partners.models import Partner
from partners.services import default_identifier
from rcd_store import audit
from rcd_store.models import Declarant, Service
from rcd_store.services import active_habilitations
from token_suite import _xmldsig
from token_suite import jwt as interops_jwt
from token_suite.errors import InteropsError
from token_suite.vector import ACR_PASSWORD

bp = Blueprint("machine_login", __name__)


def init_app(app: Flask) -> None:
    """Machine login is a JSON API authenticated by its own credentials: no CSRF form token."""
    csrf.exempt(app, bp.name)


MAX_BODY = 64 * 1024
FIELDS = ("siret", "nom", "prenom", "motdepasse", "service")
SCHEME = "DSNLogin"


class _NoReplayCheck:
    """The DSN token stands for a login and is presented on every call of its short life."""

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        return False


def _refuse(status: int, error: str, message: str) -> Response:
    response = jsonify(error=error, error_description=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'{SCHEME} error="{error}"'
    return no_store(response)


def _parse(body: bytes) -> dict[str, str] | None:
    try:
        root = _xmldsig.parse_xml(body)
    except InteropsError:
        return None
    if etree.QName(root).localname != "identifiants":
        return None
    values: dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str) and etree.QName(child).localname in FIELDS:
            values[etree.QName(child).localname] = (child.text or "").strip()
    return values if all(values.get(name) for name in FIELDS) else None


def _service(session: Session, value: str) -> Service | None:
    stmt = select(Service).where(Service.code == value.upper())
    if value.isdigit() and len(value) < 10:
        stmt = select(Service).where(Service.numeric_id == int(value))
    found = session.scalars(stmt).first()
    return found if found is not None and found.state != "closed" else None


def _audience(session: Session, service: Service) -> str:
    name = service.partner_name or ""
    partner = session.scalars(
        select(Partner).where(func.lower(Partner.name) == name.lower())
    ).first()
    return partner.identifier if partner is not None else default_identifier(name)


def _habilitated(session: Session, declarant: Declarant, service: Service) -> bool:
    return any(h.service_id == service.id for h in active_habilitations(session, declarant.id))


@bp.post("/authentifier/1.0/")
def authentifier() -> Response:
    """Exchange a declarant's credentials and a service for a short-lived signed token."""
    if (request.content_length or 0) > MAX_BODY:
        return _refuse(413, "requete", "corps de requête trop volumineux (64 Ko au plus)")
    body = request.stream.read(MAX_BODY + 1)  # bounded: a chunked body is never read in full
    if len(body) > MAX_BODY:
        return _refuse(413, "requete", "corps de requête trop volumineux (64 Ko au plus)")
    values = _parse(body)
    if values is None:
        return _refuse(400, "requete", "document XML <identifiants> invalide ou incomplet")
    session = db.session()
    ident = by_siret(session, values["siret"], values["nom"], values["prenom"])
    result = authenticate(session, ident, values["motdepasse"][:1024], code_follows=False)
    if result.declarant is None:
        reason = "locked" if result.locked else "password" if ident.candidates else "unknown"
        actor = ident.candidates[0].id if len(ident.candidates) == 1 else None
        audit.record(session, "login.failed", actor=actor, data={"method": "dsn", "reason": reason})
        session.commit()
        if result.locked:
            response = _refuse(403, "verrouille", "compte temporairement verrouillé")
            response.headers["Retry-After"] = str(result.retry_after)
            return response
        return _refuse(401, "identifiants", "identifiants incorrects")
    assert result.account is not None
    if result.declarant.totp_secret:
        return _second_factor_required(session, result)
    throttle().succeeded(result.account, result.address)
    return _issue(session, result.declarant, values["service"])


def _second_factor_required(session: Session, result: AuthResult) -> Response:
    """A declarant with a second factor gets no token from a password alone (this endpoint
    carries no code): refused, saying why. The right password is not a failure: its
    reservations are given back, and the account's count from other attempts stays."""
    assert result.declarant is not None and result.account is not None
    throttle().gave_back(result.account, result.address)
    audit.record(
        session,
        "login.failed",
        actor=result.declarant.id,
        data={"method": "dsn", "reason": "second_factor"},
    )
    session.commit()
    return _refuse(
        401,
        "double_authentification",
        "ce compte est protégé par une double authentification : la connexion machine par "
        "mot de passe seul lui est refusée (connectez-vous au portail)",
    )


def _issue(session: Session, declarant: Declarant, service_name: str) -> Response:
    service = _service(session, service_name)
    if service is None or not _habilitated(session, declarant, service):
        audit.record(
            session, "login.failed", actor=declarant.id, data={"method": "dsn", "reason": "service"}
        )
        session.commit()
        return _refuse(401, "service", "service inconnu ou non habilité pour ce déclarant")
    now = datetime.now(UTC)
    vector = vector_for(session, declarant, [service], acr=ACR_PASSWORD, auth_time=now)
    issued = token_service().issue(
        session,
        vector,
        fmt="jwt",
        audience=_audience(session, service),
        now=now,
        typ=DSN_LOGIN_TYP,
    )
    audit.record(
        session,
        "login.succeeded",
        actor=declarant.id,
        data={"method": "dsn", "service": service.code},
    )
    session.commit()
    return no_store(Response(issued.token, mimetype="text/plain"))


def presented_token() -> str | None:
    """The token of an ``Authorization: DSNLogin jeton=<token>`` header, or None."""
    rest = presented(request.headers.get("Authorization"), SCHEME)
    if rest is None:
        return None
    name, _eq, value = rest.partition("=")
    if name.strip().lower() != "jeton":
        return None
    return value.strip().strip('"') or None


def _known_audiences(session: Session) -> set[str]:
    return {_audience(session, s) for s in session.scalars(select(Service))}


def verify_presented(session: Session) -> dict[str, Any]:
    """Verify the presented DSNLogin token: operator signature, issuer, expiry, the
    DSN login type ``dsnlogin+jwt`` (a navigation token ``JWT``, an access token
    ``at+jwt`` or an ID token, untyped, is refused even when its audience is a service
    host's identifier: stops token confusion), and an audience that is the host of one
    of our services. Raises ``InteropsError``."""
    from token_suite.errors import InvalidService, SecurityTokenUnavailable

    token = presented_token()
    if token is None:
        raise SecurityTokenUnavailable("no DSNLogin token")
    trust = own_trust()
    audiences = _known_audiences(session)
    for audience in sorted(audiences):
        try:
            vector = interops_jwt.verify(
                token,
                trust=trust,
                audience=audience,
                typ=DSN_LOGIN_TYP,
                replay=_NoReplayCheck(),
                skew=timedelta(seconds=30),
            )
        except InvalidService:
            continue
        return dict(vector.claims)
    raise InvalidService("token audience is not a service of this operator")


@bp.get("/authentifier/1.0/verifier")
def verifier() -> Response:
    """Check ``Authorization: DSNLogin jeton=...``: 200 with the claims, or 401 saying why."""
    try:
        claims = verify_presented(db.session())
    except InteropsError as exc:
        return _refuse(401, "jeton", f"jeton invalide ({exc.code})")
    return no_store(jsonify(claims))
