"""The demo partner site: the reference integration of a partner organism.

A small Flask app, separate from the identity provider, that knows the operator
only by its public documents (``/saml/metadata``, the OpenID Connect discovery
document and its JWKS, all fetched over HTTP) and verifies every token with
``token_suite`` alone. It shows who arrived: declarant id, names, SIRET, PAGM
and habilitations.

- SAML service provider: ``/saml/metadata`` (its own key and certificate, kept in
  memory only: never in clear under the instance folder), ``/saml/acs`` (jetons
  from portal navigation, or answers to its own AuthnRequests), ``/saml/login``
  (SP-initiated, HTTP-Redirect, signed), ``/saml/slo`` (Single Logout both ways).
- OpenID Connect relying party (public client): ``/oidc/login`` (code + PKCE
  S256, state, nonce), ``/oidc/callback``.
- ``POST /deconnexion``: RP-initiated (OIDC) or SP-initiated (SAML) logout.

The pages are in :mod:`idp.demo.partner_views`; SAML messages, bindings and metadata
come from ``token_suite`` (:mod:`token_suite.bindings`, :mod:`token_suite.messages`),
as a partner's own site would use them; this module holds the site, the operator as
the partner sees it, and the arrivals.

The site, its key, the operator as the partner sees it and the arrivals are in
:mod:`idp.demo.partner_site`.
"""

from __future__ import annotations

import secrets

from flask import Flask

from idp.demo.partner_api import api_blueprint
from idp.demo.partner_site import Arrivals, Fetch, Operator, PartnerSite, fetch_url, load_key, slug
from idp.demo.partner_views import PartnerState, bp
from token_suite.replay import InMemoryReplayCache

# ------------------------------------------------------------------------ app


def create_partner_app(
    site: PartnerSite, *, secret_key: str | None = None, fetch: Fetch = fetch_url
) -> Flask:
    """The partner's web app (its own cookie name, so several run side by side);
    ``fetch`` reaches the operator (HTTP by default)."""
    app = Flask(__name__, template_folder="templates", static_folder=None)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_urlsafe(32),
        SESSION_COOKIE_NAME=f"partenaire_{slug(site.name)}",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    operator = Operator(site.idp_url, fetch)
    app.extensions["demo_partner"] = PartnerState(
        site, load_key(site.folder), operator, Arrivals(), InMemoryReplayCache()
    )
    app.register_blueprint(bp)
    app.register_blueprint(api_blueprint(site, operator))
    return app
