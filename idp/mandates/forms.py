"""Reading the mandate forms: every field bounded and checked; a French message for
what is wrong (shown on the page, nothing changed)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import request

from idp.i18n import _
from rcd_store.errors import DirectoryError
from rcd_store.mandates.lifecycle import MAX_ESTABLISHMENTS, MAX_SERVICES, Terms

#: dates typed in forms are French calendar days
PARIS = ZoneInfo("Europe/Paris")
MAX_FIELD = 100


class FormError(DirectoryError):
    """A form field that cannot be read (400, the page shown again)."""


def field(name: str, limit: int = MAX_FIELD) -> str:
    """A form field, stripped; longer than ``limit`` is an error (never cut)."""
    value = (request.form.get(name) or "").strip()
    if len(value) > limit:
        raise FormError(_("Champ trop long : {limit} caractères au plus.", limit=limit))
    return value


def day(name: str, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` day as an instant: its start in Paris, or the start of the next
    day for an end date (the end day is included)."""
    value = field(name, 10)
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise FormError(_("Date invalide : {value}.", value=value)) from None
    moment = datetime.combine(parsed, time(), tzinfo=PARIS)
    return moment + timedelta(days=1) if end else moment


def grant_terms() -> tuple[str, Terms]:
    """The mandataire's SIREN and the terms of the grant form."""
    services = request.form.getlist("services")[: MAX_SERVICES + 1]
    if any(len(code) > 40 for code in services):
        raise FormError(_("Service inconnu."))
    lines = field("etablissements", 20 * MAX_ESTABLISHMENTS).split()
    terms = Terms(
        services=services,
        kind=field("nature", 20),
        establishments=lines,
        starts_at=day("debut"),
        ends_at=day("fin", end=True),
    )
    return field("siren", 20).replace(" ", ""), terms
