"""Driving the enrolment pages with the Flask client: posting forms with their CSRF
token, reading links and codes from the delivered emails and letters."""

from __future__ import annotations

import re
from typing import Any

from tests.enrolment import support as s
from tests.idp.login_support import csrf
from tests.outbox_support import emails, letters

LINK = re.compile(r"http://idp\.test(/inscription/verifier\?jeton=[\w-]+)")
OBJECTION_LINK = re.compile(r"http://idp\.test(/inscription/opposition\?jeton=[\w-]{19})\s")
ACTIVATION = re.compile(r"Code d'activation : ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})")
OBJECTION = re.compile(r"Code d'opposition : ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})")


def form(who: Any = s.CANDIDATE, siret: str = s.SIRET, **changes: str) -> dict[str, str]:
    data = {
        "siret": siret,
        "nom": who.last_name,
        "prenom": who.first_name,
        "courriel": who.email,
        "mot_de_passe": who.password,
        "confirmation": who.password,
    }
    data.update(changes)
    return data


def submit(client: Any, path: str, data: dict[str, str], page: str | None = None) -> Any:
    """POST ``data`` to ``path`` with the CSRF token of ``page`` (``path`` by default)."""
    token = csrf(client, page or path)
    return client.post(path, data={"csrf_token": token, **data})


def verification_path(app: Any, to: str) -> str:
    mails = [m for m in emails(app) if m.recipient == to]
    assert mails, f"no email to {to}"
    found = LINK.search(mails[-1].text)
    assert found, mails[-1].text
    return found.group(1).replace("&amp;", "&")


def verify(client: Any, app: Any, to: str) -> Any:
    path = verification_path(app, to)
    token = path.split("jeton=", 1)[1]
    return submit(client, "/inscription/verifier", {"jeton": token}, page=path)


def letter_codes(app: Any) -> tuple[str, str, str]:
    """(activation code, objection code, objection link path) of the latest letter, read
    from the PDF's text."""
    text = letters(app)[-1].text
    flat = " ".join(text.split())
    activation, objection = ACTIVATION.search(flat), OBJECTION.search(flat)
    link = OBJECTION_LINK.search(flat)
    assert activation and objection and link, text
    return activation.group(1), objection.group(1), link.group(1)


def enrol_and_verify(client: Any, app: Any, who: Any = s.CANDIDATE) -> tuple[str, str, str]:
    response = submit(client, "/inscription", form(who))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert verify(client, app, who.email).status_code == 200
    return letter_codes(app)


def login(client: Any, who: Any) -> None:
    token = csrf(client, "/connexion?force=1")
    response = client.post(
        "/connexion",
        data={"csrf_token": token, "courriel": who.email, "mot_de_passe": who.password},
    )
    assert response.status_code in (302, 303), response.get_data(as_text=True)


def field_error(page: str, name: str) -> str | None:
    """The error shown beside field ``name``, if the input points to it."""
    tied = re.search(rf'<input id="{name}"[^>]*aria-describedby="[^"]*erreur-{name}', page)
    found = re.search(rf'id="erreur-{name}">(.*?)</strong>', page, re.DOTALL)
    return found.group(1).strip() if tied and found else None
