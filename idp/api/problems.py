"""Errors of the JSON API as problem objects (RFC 9457, ``application/problem+json``,
French ``detail``), and the checked reading of every parameter and body: bad input is a
400 that says what is wrong, never a 500."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, json, request
from werkzeug.exceptions import HTTPException

from idp.web.answers import no_store
from rcd_store.errors import DirectoryError
from rcd_store.identifiers import InvalidIdentifier, validate_siret

PROBLEM = "application/problem+json"
TITLES = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Introuvable",
    405: "Méthode non autorisée",
    409: "Conflit",
    413: "Requête trop volumineuse",
    415: "Type de contenu non pris en charge",
    429: "Trop de demandes",
    503: "Service momentanément indisponible",
}
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 200
MAX_ID = 2**31 - 1
SERVICE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,39}$")
DECLARANT_ID = re.compile(r"^D[0-9A-F]{32}$")
SIREN = re.compile(r"^[0-9]{9}$")
_DIGITS = re.compile(r"^[0-9]{1,10}$")


class ApiProblem(Exception):
    """An answer of the API other than success: its status, French detail, headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """The problem object of ``status`` (``type`` ``about:blank``, French title)."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Erreur"), "status": status}
    body["detail"] = detail
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM)
    response.headers.update(headers or {})
    return no_store(response)


def _from_problem(exc: ApiProblem) -> Response:
    return problem(exc.status, exc.detail, exc.headers)


def _from_directory(exc: DirectoryError) -> Response:
    return problem(exc.http_status, exc.message)


def from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = TITLES.get(status, "La demande n'a pas pu aboutir.")
    response = problem(status, detail)
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def attach(bp: Blueprint) -> None:
    """Render the errors raised in ``bp``'s views as problem objects."""
    bp.register_error_handler(ApiProblem, _from_problem)
    bp.register_error_handler(DirectoryError, _from_directory)
    bp.register_error_handler(HTTPException, from_http)


def bad(detail: str) -> ApiProblem:
    return ApiProblem(400, detail)


def integer(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    """A decimal integer parameter within [low, high] (``default`` when absent)."""
    if value is None:
        return default
    if not _DIGITS.match(value) or not low <= int(value) <= high:
        raise bad(f"paramètre « {name} » invalide : un entier de {low} à {high} est attendu")
    return int(value)


def page_args() -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1 to 200, 50 by default) of the query."""
    page = integer(request.args.get("page"), "page", default=1, low=1, high=MAX_PAGE)
    size = request.args.get("per_page")
    return page, integer(size, "per_page", default=50, low=1, high=MAX_PER_PAGE)


def path_id(value: str, name: str) -> int:
    """A numeric id of the path (1 to 2**31-1), or 400."""
    return integer(value, name, default=0, low=1, high=MAX_ID)


def text(value: Any, name: str, *, limit: int, required: bool = False) -> str | None:
    """A string of at most ``limit`` characters (``None`` when absent and optional)."""
    if value is None or value == "":
        if required:
            raise bad(f"« {name} » est obligatoire")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise bad(f"« {name} » invalide : une chaîne de {limit} caractères au plus est attendue")
    return value


def siret(value: Any, name: str = "siret") -> str:
    """A SIRET (14 digits, check key verified), or 400."""
    checked = text(value, name, limit=14, required=True)
    try:
        return validate_siret(checked or "")
    except InvalidIdentifier as exc:
        raise bad(f"« {name} » invalide : {exc}") from None


def matching(value: Any, name: str, pattern: re.Pattern[str], *, limit: int) -> str:
    """A required string matching ``pattern``, or 400."""
    checked = text(value, name, limit=limit, required=True) or ""
    if not pattern.match(checked):
        raise bad(f"« {name} » invalide")
    return checked


def service_code(value: Any, name: str = "service") -> str:
    """A service code (capitals, digits, ``-`` and ``_``, 40 at most), or 400."""
    return matching(value, name, SERVICE_CODE, limit=40)


def instant(value: Any, name: str) -> datetime | None:
    """An RFC 3339 date-time with its offset (``None`` when absent), or 400."""
    checked = text(value, name, limit=40)
    if checked is None:
        return None
    try:
        parsed = datetime.fromisoformat(checked)
    except ValueError:
        raise bad(f"« {name} » invalide : date et heure RFC 3339 attendues") from None
    if parsed.tzinfo is None:
        raise bad(f"« {name} » invalide : le fuseau horaire est obligatoire")
    return parsed


def string_list(value: Any, name: str, item: Callable[[Any, str], str], *, most: int) -> list[str]:
    """A JSON array of at most ``most`` strings, each checked by ``item``."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > most:
        raise bad(f"« {name} » invalide : une liste de {most} éléments au plus est attendue")
    return [item(entry, name) for entry in value]


def json_body(allowed: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object (``application/json``), with no member outside
    ``allowed``; 415 for another type, 400 for anything malformed."""
    if request.mimetype != "application/json":
        raise ApiProblem(415, "corps JSON attendu (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad("corps invalide : un objet JSON est attendu")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad(f"membre inconnu : « {unknown[0][:40]} »")
    return body


def page_body(page: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON of one page of a list."""
    return {"items": rows, "page": page.page, "per_page": page.per_page, "total": page.total}
