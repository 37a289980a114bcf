"""The OpenAPI 3.1 document of the JSON API, served at ``GET /api/openapi.json``: every
endpoint with its parameters, bodies, answers and errors (problem objects), and the
OAuth 2 security scheme with its scopes. Built from the same bounds the views check
(:mod:`idp.api.problems`), so the document and the code agree."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from idp.api.bearer import ADMIN_SCOPE, READ_SCOPE
from idp.api.problems import MAX_ID, MAX_PAGE, MAX_PER_PAGE, TITLES
from idp.oidc.clients import issuer
from rcd_store.administration.listing import STATUSES
from rcd_store.mandates.lifecycle import KINDS, MAX_ESTABLISHMENTS, MAX_SERVICES

bp = Blueprint("api_doc", __name__)

SIRET = {"type": "string", "pattern": "^[0-9]{14}$", "description": "SIRET (clé vérifiée)"}
SIREN = {"type": "string", "pattern": "^[0-9]{9}$"}
SERVICE = {"type": "string", "pattern": "^[A-Z0-9][A-Z0-9_-]{0,39}$", "maxLength": 40}
DECLARANT = {"type": "string", "pattern": "^D[0-9A-F]{32}$", "maxLength": 40}
INSTANT = {"type": "string", "format": "date-time"}
ROLE = {"type": "string", "enum": ["DECLARANT", "CONSULTATION"]}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], *, closed: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties)
    if closed:
        schema["additionalProperties"] = False
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _page_of(item: str) -> dict[str, Any]:
    return _object(
        {
            "items": {"type": "array", "items": _ref(item)},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            "total": {"type": "integer", "minimum": 0},
        }
    )


TEXT = {"type": "string"}
FLAG = {"type": "boolean"}


CHANGES = {
    "type": "array",
    "minItems": 1,
    "maxItems": 200,
    "items": {
        **_object({"siret": SIRET, "service": SERVICE, "role": ROLE, "granted": FLAG}, closed=True),
        "required": ["siret", "service", "granted"],
    },
}


def _read_schemas() -> dict[str, Any]:
    """What the partners' read API answers."""
    return {
        "Problem": _object(
            {"type": TEXT, "title": TEXT, "status": {"type": "integer"}, "detail": TEXT}
        ),
        "SharedEstablishment": _object(
            {
                "siret": SIRET,
                "siren": SIREN,
                "company_name": TEXT,
                "head_office": FLAG,
                "active": FLAG,
            }
        ),
        "SharedDeclarant": _object({"id": DECLARANT, "last_name": TEXT, "first_name": TEXT}),
        "SharedRight": _object(
            {
                "id": ID,
                "declarant_id": DECLARANT,
                "siret": SIRET,
                "service": SERVICE,
                "role": ROLE,
                "granted_at": INSTANT,
            }
        ),
    }


def _admin_schemas() -> dict[str, Any]:
    """What the administration API answers (mandates aside)."""
    return {
        "Company": _object({"id": ID, "siren": SIREN, "name": TEXT}),
        "Establishment": _object(
            {
                "id": ID,
                "siret": SIRET,
                "address": _nullable(TEXT),
                "head_office": FLAG,
                "active": FLAG,
            }
        ),
        "Declarant": _object(
            {
                "id": DECLARANT,
                "last_name": TEXT,
                "first_name": TEXT,
                "email": _nullable(TEXT),
                "status": {"type": "string", "enum": list(STATUSES)},
                "role": TEXT,
            }
        ),
    }


def _mandate_schemas() -> dict[str, Any]:
    """Mandates: as read, as granted, and the habilitations under them."""
    return {
        "Mandate": _object(
            {
                "id": ID,
                "kind": {"type": "string", "enum": list(KINDS)},
                "client_siren": SIREN,
                "client_name": TEXT,
                "firm_siren": SIREN,
                "firm_name": TEXT,
                "services": {"type": "array", "items": SERVICE},
                "establishments": {"type": "array", "items": SIRET},
                "starts_at": INSTANT,
                "ends_at": _nullable(INSTANT),
                "ended_at": _nullable(INSTANT),
                "live": FLAG,
            }
        ),
        "MandateGrant": _grant_body(),
        "MandateHabilitation": {
            **_object(
                {"declarant_id": DECLARANT, "siret": SIRET, "service": SERVICE, "role": ROLE},
                closed=True,
            ),
            "required": ["declarant_id", "siret", "service"],
        },
        "Ended": _object({"mandate_id": ID, "revoked": {"type": "integer", "minimum": 0}}),
        "Status": _object({"declarant_id": DECLARANT, "status": {"enum": ["active", "disabled"]}}),
        "Changed": _object(
            {"declarant_id": DECLARANT, "changed": {"type": "integer", "minimum": 0}}
        ),
        "HabilitationChanges": _object({"changes": CHANGES}, closed=True),
        "Granted": _object({"habilitation_id": ID, "created": FLAG}),
        "Revoked": _object({"habilitation_id": ID, "revoked": {"const": True}}),
        "MandateRight": _object(
            {
                "id": ID,
                "declarant_id": DECLARANT,
                "last_name": TEXT,
                "first_name": TEXT,
                "siret": SIRET,
                "service": SERVICE,
                "role": ROLE,
            }
        ),
        "MandateRights": _object(
            {
                "items": {"type": "array", "items": _ref("MandateRight"), "maxItems": 500},
                "total": {"type": "integer", "minimum": 0},
            }
        ),
    }


def _grant_body() -> dict[str, Any]:
    body = _object(
        {
            "firm_siren": SIREN,
            "kind": {"type": "string", "enum": list(KINDS), "default": "cabinet"},
            "services": {
                "type": "array",
                "items": SERVICE,
                "minItems": 1,
                "maxItems": MAX_SERVICES,
            },
            "establishments": {"type": "array", "items": SIRET, "maxItems": MAX_ESTABLISHMENTS},
            "starts_at": INSTANT,
            "ends_at": INSTANT,
        },
        closed=True,
    )
    body["required"] = ["firm_siren", "services"]
    return body


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


PAGING = [
    _query("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "page (1 d'abord)"),
    _query(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "taille de page (50 par défaut)",
    ),
]
SEARCH = _query("q", {"type": "string", "maxLength": 100}, "recherche")
SIDE = _query(
    "side",
    {"type": "string", "enum": ["client", "firm"]},
    "client : mandats accordés ; firm : mandats reçus",
)
COMPANY = _path("company_id", ID)
MANDATE = _path("mandate_id", ID)


def _problem(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": TITLES[status],
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return answer


def _operation(
    summary: str,
    scope: str,
    answer: str,
    *,
    parameters: list[dict[str, Any]],
    body: str | None,
    statuses: tuple[str, ...],
) -> dict[str, Any]:
    errors = [400, 401, 403, 404, 503] + ([409, 413, 415] if body else [])
    responses: dict[str, Any] = {
        code: {"description": summary, "content": {"application/json": {"schema": _ref(answer)}}}
        for code in statuses
    }
    responses.update({str(code): _problem(code) for code in errors})
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"oauth2": [scope]}],
        "parameters": list(parameters),
        "responses": responses,
    }
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


RCD = "/api/v1/rcd"
COMPANIES = "/api/v1/entreprises"
ONE = f"{COMPANIES}/{{company_id}}"
A_MANDATE = f"{ONE}/mandats/{{mandate_id}}"
READ, ADMIN = READ_SCOPE, ADMIN_SCOPE
STATUS = _query("status", {"type": "string", "enum": list(STATUSES)}, "état")
PERSON = f"{ONE}/declarants/{{declarant_id}}"
PERSON_ID = _path("declarant_id", DECLARANT)
RIGHTS = [*PAGING, _query("service", SERVICE, "un service"), _query("siret", SIRET, "un SIRET")]
Operation = tuple[str, str, str, str, str, list[dict[str, Any]], str | None, tuple[str, ...]]
#: (path, method, summary, scope, answer schema, parameters, body schema, statuses)
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    (f"{RCD}/etablissements", "get", "Établissements concernés par les services partagés",
     READ, "SharedEstablishmentPage", PAGING, None, ("200",)),
    (f"{RCD}/declarants", "get", "Déclarants habilités sur les services partagés",
     READ, "SharedDeclarantPage", PAGING, None, ("200",)),
    (f"{RCD}/declarants/{{declarant_id}}", "get", "Un déclarant habilité sur ces services",
     READ, "SharedDeclarant", [PERSON_ID], None, ("200",)),
    (f"{RCD}/habilitations", "get", "Habilitations en vigueur sur les services partagés",
     READ, "SharedRightPage", RIGHTS, None, ("200",)),
    (COMPANIES, "get", "Entreprises que vous administrez",
     ADMIN, "CompanyPage", PAGING, None, ("200",)),
    (f"{ONE}/etablissements", "get", "Établissements de l'entreprise",
     ADMIN, "EstablishmentPage", [COMPANY, SEARCH, *PAGING], None, ("200",)),
    (f"{ONE}/declarants", "get", "Déclarants de l'entreprise",
     ADMIN, "DeclarantPage", [COMPANY, SEARCH, *PAGING, STATUS], None, ("200",)),
    (f"{PERSON}/suspension", "post", "Suspendre un déclarant",
     ADMIN, "Status", [COMPANY, PERSON_ID], None, ("200",)),
    (f"{PERSON}/reactivation", "post", "Réactiver un déclarant suspendu",
     ADMIN, "Status", [COMPANY, PERSON_ID], None, ("200",)),
    (f"{PERSON}/habilitations", "post", "Accorder ou révoquer des habilitations (tout ou rien)",
     ADMIN, "Changed", [COMPANY, PERSON_ID], "HabilitationChanges", ("200",)),
    (f"{ONE}/mandats", "get", "Mandats accordés ou reçus",
     ADMIN, "MandatePage", [COMPANY, SIDE, *PAGING], None, ("200",)),
    (f"{ONE}/mandats", "post", "Accorder un mandat",
     ADMIN, "Mandate", [COMPANY], "MandateGrant", ("201",)),
    (f"{A_MANDATE}/fin", "post", "Mettre fin au mandat (ses habilitations sont révoquées)",
     ADMIN, "Ended", [COMPANY, MANDATE, SIDE], None, ("200",)),
    (f"{A_MANDATE}/habilitations", "post", "Habiliter un de vos déclarants chez le client",
     ADMIN, "Granted", [COMPANY, MANDATE], "MandateHabilitation", ("201", "200")),
    (f"{A_MANDATE}/habilitations", "get", "Habilitations portées par le mandat",
     ADMIN, "MandateRights", [COMPANY, MANDATE, SIDE], None, ("200",)),
    (f"{A_MANDATE}/habilitations/{{habilitation_id}}/revocation", "post",
     "Révoquer une habilitation portée par le mandat",
     ADMIN, "Revoked", [COMPANY, MANDATE, _path("habilitation_id", ID)], None, ("200",)),
)
# fmt: on


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, method, summary, scope, answer, parameters, body, statuses in OPERATIONS:
        paths.setdefault(path, {})[method] = _operation(
            summary, scope, answer, parameters=parameters, body=body, statuses=statuses
        )
    return paths


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api/v1``."""
    schemas = {**_read_schemas(), **_admin_schemas(), **_mandate_schemas()}
    for item in (
        "SharedEstablishment",
        "SharedDeclarant",
        "SharedRight",
        "Company",
        "Establishment",
        "Declarant",
        "Mandate",
    ):
        schemas[f"{item}Page"] = _page_of(item)
    scopes = {
        READ_SCOPE: "lire l'annuaire pour les services partagés",
        ADMIN_SCOPE: "administrer vos entreprises",
    }
    token_url = f"{issuer()}/oauth/token"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "API de l'annuaire Interops",
            "version": "1.0.0",
            "description": "Administration (rcd.admin) et lecture partenaire (rcd.read). "
            "Erreurs : objets « problem » (RFC 9457), messages en français.",
        },
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {"tokenUrl": token_url, "scopes": scopes},
                        "authorizationCode": {
                            "authorizationUrl": f"{issuer()}/oauth/authorize",
                            "tokenUrl": token_url,
                            "scopes": scopes,
                        },
                    },
                }
            },
        },
    }


@bp.get("/api/openapi.json")
def openapi() -> Response:
    """The OpenAPI document (public: it names no secret)."""
    return jsonify(document())
