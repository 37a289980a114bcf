"""Helpers shared by the login tests: CSRF tokens from pages, form posts, directory setup."""

from __future__ import annotations

import re
from typing import Any

from tests import factories

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ERROR = re.compile(r'<div class="erreur" role="alert"[^>]*>\s*<p>(.*?)</p>', re.DOTALL)


def csrf(client: Any, path: str = "/connexion?force=1") -> str:
    """The CSRF token of the form on ``path`` (the GET also sets the CSRF cookie)."""
    page = client.get(path).get_data(as_text=True)
    found = FORM_TOKEN.search(page)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def post(
    client: Any,
    path: str,
    data: dict[str, str],
    *,
    token_from: str = "/connexion?force=1",
    **kwargs: Any,
) -> Any:
    """POST ``data`` with the page's CSRF token."""
    return client.post(path, data={"csrf_token": csrf(client, token_from), **data}, **kwargs)


def login_siret(
    client: Any,
    *,
    siret: str = factories.SIRET_A,
    last: str = "Dupont",
    first: str = "Élodie",
    password: str = factories.PASSWORD,
    **extra: str,
) -> Any:
    return post(
        client,
        "/connexion",
        {"siret": siret, "nom": last, "prenom": first, "mot_de_passe": password, **extra},
    )


def login_email(
    client: Any,
    *,
    email: str = "elodie@dupont.example",
    password: str = factories.PASSWORD,
    **extra: str,
) -> Any:
    return post(client, "/connexion", {"courriel": email, "mot_de_passe": password, **extra})


def error_of(response: Any) -> str | None:
    found = ERROR.search(response.get_data(as_text=True))
    return found.group(1).strip() if found else None


def setup_directory(session: Any) -> Any:
    """Company A with Élodie Dupont (member), a DSN service; returns the declarant."""
    factories.company(session)
    factories.service(session)
    declarant = factories.declarant(session)
    session.commit()
    return declarant


def session_cookie(client: Any) -> str | None:
    cookie = client.get_cookie("idp_session")
    return cookie.value if cookie is not None else None
