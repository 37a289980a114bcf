"""Composition root: ``create_app(config)`` wires the packages, in this order: settings,
stores (database, Redis, replay cache), services (passwords, keyring, translations),
web guards (body limit, CSRF, errors, security headers), then one blueprint per concern.
The top-level ``app.py`` of a checkout re-exports it for ``gunicorn 'app:create_app()'``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import idp.stores.models  # noqa: F401  (web tables)
import partners.models  # noqa: F401  (partner registry tables)
from idp import admin as administration
from idp import config as idp_config
from idp import i18n
from idp.api import setup as api
from idp.auth import lean_login, login, password_reset, passwords, totp
from idp.console import web as console
from idp.enrolment import admin as enrolment_admin
from idp.enrolment import objection as enrolment_objection
from idp.enrolment import public as enrolment
from idp.events import background as security_events
from idp.machine import login as machine_login
from idp.mandates import pages as mandate_pages
from idp.oidc import lean_token
from idp.oidc import views as oauth
from idp.outbox import delivery as outbox_delivery
from idp.portal import dashboard, home, lean_navigation, navigation, profile
from idp.saml import inbound
from idp.saml import metadata_refresh as saml_metadata_refresh
from idp.saml import slo as slo_saml
from idp.saml import sso as sso_saml
from idp.stores import db, redis_client, replay
from idp.tokens import issuing, signing
from idp.web import body_limit, csrf, documents, errors, security_headers


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then ``IDP_*`` environment variables, then ``config`` overrides."""
    settings = idp_config.load(config)
    idp_config.resolve_secrets(settings)
    app = Flask("idp", instance_path=settings["INSTANCE_PATH"], instance_relative_config=True)
    app.config.update(settings)
    app.config["SESSION_COOKIE_SECURE"] = settings["BASE_URL"].startswith("https://")
    db.init_app(app)
    redis_client.init_app(app)
    replay.init_app(app)
    passwords.init_app(app)
    signing.init_app(app)
    issuing.init_app(app)
    i18n.init_app(app)
    lean_login.init_app(app)  # the ordinary login in front of Flask, inside the body limit
    lean_navigation.init_app(app)  # SSO navigation in front of Flask, inside the body limit
    lean_token.init_app(app)  # machine tokens in front of Flask, inside the body limit
    body_limit.init_app(app)  # before csrf: an oversize body is refused before any read
    csrf.init_app(app)
    errors.init_app(app)
    security_headers.init_app(app)
    oauth.init_app(app)
    sso_saml.init_app(app)
    slo_saml.init_app(app)
    inbound.init_app(app)
    machine_login.init_app(app)
    if settings["TRUSTED_PROXIES"]:
        # client addresses (rate limits) and scheme from the trusted proxies only
        hops = int(settings["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.register_blueprint(home.bp)
    app.register_blueprint(signing.bp)
    app.register_blueprint(sso_saml.bp)
    app.register_blueprint(slo_saml.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(navigation.bp)
    app.register_blueprint(profile.bp)  # /profil: own names and email
    app.register_blueprint(inbound.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(password_reset.bp)
    app.register_blueprint(totp.bp)
    app.register_blueprint(machine_login.bp)
    api.init_app(app)  # /api/v1/... and /api/openapi.json
    app.register_blueprint(mandate_pages.bp)  # /administration/entreprises/<id>/mandats
    administration.init_app(app)  # /administration/... and /invitation
    console.init_app(app)  # /console/...: the operators' console (second factor required)
    app.register_blueprint(enrolment.bp)  # enrolment and join requests
    app.register_blueprint(enrolment_objection.bp)
    app.register_blueprint(enrolment_admin.bp)
    outbox_delivery.init_app(app)  # the background sender, when IDP_OUTBOX_BACKGROUND is on
    security_events.init_app(app)  # SETs and logout tokens; pushed when IDP_EVENTS_BACKGROUND
    saml_metadata_refresh.init_app(app)  # partners' metadata, when IDP_SAML_METADATA_BACKGROUND
    for extension in settings["EXTENSIONS"]:  # the widget, above idp (docs/architecture.md)
        importlib.import_module(extension).init_app(app)
    documents.init_app(app)  # outermost: JWKS, discovery, metadata as prepared bytes
    return app
