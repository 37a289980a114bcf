"""The identity vector of a verified JWT payload (private; :mod:`token_suite.jwt`).

:func:`py_vector` is the one parser: it reads each claim once, checks every
Interops type in one pass (stops ill-typed ``iss``, ``sub``, ``aud``, ``jti``,
names, ``pagm``, ``habilitations``, ``auth_time``: :class:`InvalidSecurityToken`
naming the claim) and builds the vector through the :class:`IdentityVector` and
:class:`Habilitation` constructors, as the SAML reader does. No claim rule lives
in C (``_speedups`` only frames bytes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

from token_suite.errors import InvalidSecurityToken
from token_suite.vector import ACR_LEVELS, Habilitation, IdentityVector

__all__ = ["MAX_TIMESTAMP", "NUMBER_TYPES", "py_vector"]

MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z
#: The JSON number types (``bool`` is not one).
NUMBER_TYPES = frozenset({int, float})


def py_vector(payload: dict[str, Any]) -> IdentityVector:
    """The identity vector of a signed payload, built by its constructor; stops ill-typed claims.

    Each claim is read once and every type checked in one pass; the first
    ill-typed claim is named in the :class:`InvalidSecurityToken`.
    """
    get = payload.get
    iss, sub, aud, jti = get("iss"), get("sub"), get("aud"), get("jti")
    siret, family_name, given_name = get("siret"), get("family_name"), get("given_name")
    email, acr, sid = get("email"), get("acr"), get("sid")
    text_or_none = _OPTIONAL_TEXT_TYPES
    if not (
        type(iss) is type(sub) is type(jti) is str
        and iss
        and sub
        and jti
        and ((type(aud) is str and aud) or (type(aud) is list and _is_text_list(aud)))
        and type(siret) in text_or_none
        and type(family_name) in text_or_none
        and type(given_name) in text_or_none
        and type(email) in text_or_none
        and type(acr) in text_or_none
        and type(sid) in text_or_none
    ):
        _raise_claim_error(payload)
    # positional, in the field order (a keyword call costs ~1 us a token; test_claims.py
    # compares every field with a keyword-built vector)
    return IdentityVector(
        sub,
        siret,
        family_name,
        given_name,
        email,
        _pagm(get("pagm", _ABSENT)),
        _habilitations(get("habilitations", _ABSENT)),
        acr or ACR_LEVELS[0],
        _auth_time(get("auth_time")),
        sid,
        payload,
    )


def _is_text_list(values: list[Any]) -> bool:
    return bool(values) and _TEXT_TYPE.issuperset(map(type, values)) and all(values)


def _raise_claim_error(payload: dict[str, Any]) -> NoReturn:
    """The first ill-typed claim, in the order the profile lists them."""
    for name in ("iss", "sub", "jti"):
        value = payload.get(name)
        if type(value) is not str or not value:
            raise InvalidSecurityToken(f"claim {name} missing or not a string")
    aud = payload.get("aud")
    if not ((type(aud) is str and aud) or (type(aud) is list and _is_text_list(aud))):
        raise InvalidSecurityToken("claim aud missing or malformed")
    name = next(n for n in _OPTIONAL_TEXT if type(payload.get(n)) not in _OPTIONAL_TEXT_TYPES)
    raise InvalidSecurityToken(f"claim {name} is not a string")


_TEXT_TYPE = frozenset({str})
_OPTIONAL_TEXT = ("siret", "family_name", "given_name", "email", "acr", "sid")
_OPTIONAL_TEXT_TYPES = frozenset({str, type(None)})
_ABSENT: list[Any] = []  # default of absent list claims; never mutated


def _pagm(value: Any) -> tuple[str, ...]:
    if type(value) is not list or not _TEXT_TYPE.issuperset(map(type, value)):
        raise InvalidSecurityToken("claim pagm is not a list of strings")
    return tuple(value)


def _habilitations(value: Any) -> tuple[Habilitation, ...]:
    if type(value) is not list:
        raise InvalidSecurityToken("claim habilitations is not a list")
    return tuple(map(_habilitation, value)) if value else ()


def _habilitation(value: Any) -> Habilitation:
    """One ``{"service","siret","role"}`` object of non-empty strings, by the constructor."""
    if type(value) is not dict:
        raise InvalidSecurityToken("claim habilitations malformed: not an object")
    get = value.get
    service, siret, role = get("service"), get("siret"), get("role")
    if not (type(service) is type(siret) is type(role) is str and service and siret and role):
        raise InvalidSecurityToken("claim habilitations malformed: needs service, siret, role")
    return Habilitation(service, siret, role)


def _auth_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if type(value) not in NUMBER_TYPES or not 0 <= value <= MAX_TIMESTAMP:
        raise InvalidSecurityToken("claim auth_time is not a NumericDate")
    return datetime.fromtimestamp(value, UTC)
