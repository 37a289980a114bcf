"""Helpers of the administration page tests: log in as someone, post with the CSRF
token, enumerate the blueprint's routes with ids filled in."""

from __future__ import annotations

import re
from typing import Any

from tests.idp.portal_support import log_in

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ALERT = re.compile(r'role="alert"><p>(.*?)</p>', re.DOTALL)


def client_of(app: Any, declarant_id: str | None) -> Any:
    client = app.test_client()
    if declarant_id is not None:
        log_in(app, client, declarant_id)
    return client


def token(client: Any) -> str:
    """A CSRF token for this client (any page with a form sets the cookie)."""
    page = client.get("/connexion?force=1").get_data(as_text=True)
    found = FORM_TOKEN.search(page)
    assert found
    return found.group(1)


def post(client: Any, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return client.post(path, data={"csrf_token": token(client), **(data or {})}, **kwargs)


def alert(response: Any) -> str:
    found = ALERT.search(response.get_data(as_text=True))
    return found.group(1).replace("&#39;", "'").strip() if found else ""


def routes(app: Any, blueprint: str = "administration") -> list[tuple[str, str, Any]]:
    """(endpoint, method, rule) of every route of the blueprint (a new route is listed
    without anyone adding it here)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != blueprint:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule))
    return found


def urls(rule: Any, *, company: int, declarant: str, establishment: int) -> list[str]:
    """The rule's URLs with these ids (one per action word for the declarant actions)."""
    from idp.admin.actions import MEMBER_ACTIONS

    ids = {"company_id": company, "declarant_id": declarant, "establishment_id": establishment}
    values = {name: ids[name] for name in rule.arguments if name in ids}
    actions = list(MEMBER_ACTIONS) if "action" in rule.arguments else [None]
    found = []
    for action in actions:
        extra = {"action": action} if action else {}
        _, url = rule.build({**values, **extra}, append_unknown=False)
        found.append(str(url))
    return found


#: tables a request changes by itself (the browser's SSO session is touched)
SESSION_TABLES = {"sso_session"}


def state(db_snapshot: Any) -> dict[str, Any]:
    """Every table but the SSO sessions: what a refused request must leave unchanged."""
    return {name: rows for name, rows in db_snapshot().items() if name not in SESSION_TABLES}
