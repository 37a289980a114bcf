"""Each app built by ``create_app`` holds its own registries (``app.extensions``): what
one app exempts from CSRF or registers for logout never reaches another app in the
same process, and no app misses what the packages register."""

from typing import Any

from idp.factory import create_app
from idp.oidc.server import server
from idp.sessions import sso as sessions
from idp.stores.db import database
from idp.web import csrf

PACKAGE_EXEMPTIONS = {
    "sso_saml",
    "slo_saml",
    "inbound",
    "machine_login",
    "oauth.token",
    "oauth.userinfo",
    "oauth.introspect",
    "oauth.revoke",
    # the JSON API: bearer tokens, no cookie (idp.api.setup)
    "api_admin",
    "api_members",
    "api_rcd",
    "api_doc",
    # the RFC 8936 poll: a bearer token, no cookie (idp.events.poll)
    "events",
}


def _two_apps(app_config: dict[str, Any]) -> tuple[Any, Any]:
    first, second = create_app(app_config), create_app(app_config)
    first.config["TESTING"] = second.config["TESTING"] = True
    return first, second


def _dispose(*apps: Any) -> None:
    for app in apps:
        database(app).engine.dispose()
        redis = app.extensions.get("idp.redis")
        if redis is not None:
            redis.close()


def test_each_app_gets_every_registration_of_its_own(app_config) -> None:
    first, second = _two_apps(app_config)
    try:
        for app in (first, second):
            assert csrf.exemptions(app) == PACKAGE_EXEMPTIONS
            assert set(sessions.logout_builders(app)) == {"saml", "oidc"}
        assert csrf.exemptions(first) is not csrf.exemptions(second)
        assert sessions.logout_builders(first) is not sessions.logout_builders(second)
        assert server(first) is not server(second)
    finally:
        _dispose(first, second)


def test_an_exemption_of_one_app_does_not_leak_into_another(app_config) -> None:
    first, second = _two_apps(app_config)
    try:
        csrf.exempt(first, "login.deconnexion_post")
        assert first.test_client().post("/deconnexion").status_code == 200
        assert second.test_client().post("/deconnexion").status_code == 400  # CSRF token
        assert "login.deconnexion_post" not in csrf.exemptions(second)
    finally:
        _dispose(first, second)


def test_a_logout_builder_of_one_app_does_not_leak_into_another(app_config) -> None:
    first, second = _two_apps(app_config)
    try:
        sessions.register_logout_builder(first, "test-proto", lambda p, r: "https://x.example")
        assert "test-proto" in sessions.logout_builders(first)
        assert "test-proto" not in sessions.logout_builders(second)
        third = create_app(app_config)
        assert set(sessions.logout_builders(third)) == {"saml", "oidc"}
        _dispose(third)
    finally:
        _dispose(first, second)
