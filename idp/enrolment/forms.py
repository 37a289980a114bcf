"""Reading the enrolment and join forms: each field bounded (an oversize one is refused,
never cut), every refused field with its own message (shown beside it, tied by
``aria-describedby``), the password never sent back to the page."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import request

from idp.auth.login import client_address
from idp.i18n import _
from idp.stores import db
from rcd_store.enrolment.people import CLIENT_ADDRESS, FormRefused, Identity
from rcd_store.errors import DirectoryError

#: field name -> most characters accepted
LIMITS = {
    "siret": 20,
    "nom": 100,
    "prenom": 100,
    "courriel": 254,
    "mot_de_passe": 1024,
    "confirmation": 1024,
}
#: the fields a page shows back as typed (never the passwords)
SHOWN = ("siret", "nom", "prenom", "courriel")


@dataclass
class Form:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    general: str | None = None

    def refuse(self, exc: DirectoryError) -> None:
        """Tie a domain refusal to its fields (or to the whole form)."""
        if isinstance(exc, FormRefused):
            for name, error in exc.errors.items():
                self.errors.setdefault(name, error.message)
        else:
            self.general = exc.message

    @property
    def shown(self) -> dict[str, str]:
        return {name: self.values.get(name, "") for name in SHOWN}


def read_fields(limits: dict[str, int]) -> Form:
    """The posted fields named by ``limits`` (name -> most characters): an oversize one
    is an error (never cut); passwords are kept as typed, the others stripped."""
    form = Form()
    for name, limit in limits.items():
        value = request.form.get(name) or ""
        if len(value) > limit:
            form.errors[name] = _("Trop long : {limit} caractères au plus.", limit=limit)
            value = ""
        form.values[name] = (
            value if name.startswith(("mot_de_passe", "confirmation")) else value.strip()
        )
    return form


def read() -> Form:
    """The posted form; oversize fields and a confirmation that differs are errors."""
    form = read_fields(LIMITS)
    if (
        form.values["mot_de_passe"] != form.values["confirmation"]
        and "confirmation" not in form.errors
    ):
        form.errors["confirmation"] = _("Les deux mots de passe ne sont pas identiques.")
    return form


def identity(form: Form) -> Identity:
    values = form.values
    return Identity(values["nom"], values["prenom"], values["courriel"], values["mot_de_passe"])


def remember_address() -> None:
    """Before each request of the enrolment pages: the client's address goes with every
    change they audit (``rcd_store.enrolment.people.record``)."""
    db.session().info[CLIENT_ADDRESS] = client_address()
