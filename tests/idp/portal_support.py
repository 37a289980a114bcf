"""Helpers for the portal tests: open an SSO session, read CSRF fields, register partners."""

from __future__ import annotations

import base64
import re
from typing import Any

from partners.services import ClientSettings, PartnerSettings, add_partner
from tests.partners.sp_metadata import sp_metadata
from token_suite.vector import ACR_PASSWORD

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def log_in(app: Any, client: Any, declarant_id: str, *, acr: str = ACR_PASSWORD) -> Any:
    """Open an SSO session directly (as the login page would) and give the client its cookie."""
    from idp.sessions import sso as sessions
    from idp.stores import db

    with app.test_request_context():
        opened = sessions.open_session(db.session(), declarant_id, acr=acr, amr=["pwd"])
        db.session().commit()
        sid = opened.row.sid
    client.set_cookie(sessions.COOKIE, opened.cookie)
    return sid


def hidden_fields(html: str) -> list[tuple[str, str]]:
    return [(name, value.replace("&amp;", "&")) for name, value in _HIDDEN.findall(html)]


def csrf_of(html: str) -> str:
    return next(value for name, value in hidden_fields(html) if name == "csrf_token")


def saml_partner(
    session: Any,
    name: str,
    services: list[str],
    *,
    entity_id: str,
    acs: str,
    trusted_portal: bool = False,
    landing_url: str | None = None,
) -> Any:
    """A SAML partner registered from generated metadata; returns its signing key."""
    metadata, key = sp_metadata(entity_id, acs)
    add_partner(
        session,
        PartnerSettings(
            name=name,
            saml_metadata=metadata,
            services=services,
            trusted_portal=trusted_portal,
            landing_url=landing_url,
        ),
    )
    session.commit()
    return key


def jwt_partner(session: Any, name: str, services: list[str], *, landing_url: str) -> str:
    """A partner receiving Interops-R JWTs at ``landing_url``; returns its identifier."""
    registered = add_partner(
        session,
        PartnerSettings(
            name=name,
            services=services,
            landing_url=landing_url,
            token_format="jwt",
            client=ClientSettings(
                client_id=f"{name.lower()}-client", token_auth="none", redirect_uris=[landing_url]
            ),
        ),
    )
    session.commit()
    return str(registered.partner.identifier)


def saml_response_of(html: str) -> bytes:
    return base64.b64decode(dict(hidden_fields(html))["SAMLResponse"])
