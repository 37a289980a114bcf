"""The Interops SAML 2.0 jeton: issue and verify (docs/profile.md, "Jeton SAML 2.0").

:func:`issue` builds a ``samlp:Response`` carrying one signed ``saml:Assertion``
(or the signed Assertion alone, for Interops-A). :func:`verify` applies the
profile's eight checks in order and returns an :class:`IdentityVector` read only
from the signed Assertion, as the signature covers it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from keys.model import SigningKey
from token_suite import _xmldsig
from token_suite.errors import (
    FailedCheck,
    InteropsError,
    InvalidAuthLevel,
    InvalidIssuer,
    InvalidPagm,
    InvalidSecurityToken,
    InvalidService,
    InvalidVI,
    Replay,
    SecurityTokenUnavailable,
    unexpected,
)
from token_suite.replay import DEFAULT_REPLAY_CACHE, ReplayCache
from token_suite.trust import Trust, TrustAnchor
from token_suite.vector import ACR_LEVELS, Habilitation, IdentityVector

__all__ = ["DEFAULT_LIFETIME", "DEFAULT_MAX_SIZE", "DEFAULT_SKEW", "issue", "verify"]

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
A = f"{{{SAML_NS}}}"
P = f"{{{SAMLP_NS}}}"
ASSERTION_TAG = f"{A}Assertion"
RESPONSE_TAG = f"{P}Response"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

DEFAULT_LIFETIME = timedelta(minutes=5)
DEFAULT_SKEW = timedelta(seconds=60)
#: Largest document accepted by :func:`verify` (bytes, before base64 decoding).
DEFAULT_MAX_SIZE = 256 * 1024

# ----------------------------------------------------------------------- issue


def new_id() -> str:
    """A fresh XML ID (an NCName: letter or underscore first)."""
    return "_" + secrets.token_hex(20)


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _attribute(name: str, values: Collection[str]) -> str:
    if not values:
        return ""
    inner = "".join(f"<saml:AttributeValue>{escape(v)}</saml:AttributeValue>" for v in values)
    return f'<saml:Attribute Name="{name}" NameFormat="{BASIC}">{inner}</saml:Attribute>'


def _attribute_statement(vector: IdentityVector) -> str:
    single = (
        ("siret", vector.siret),
        ("nom", vector.family_name),
        ("prenom", vector.given_name),
        ("courriel", vector.email),
    )
    body = _attribute("PAGM", vector.pagm) + _attribute(
        "habilitation", [h.as_saml() for h in vector.habilitations]
    )
    body += "".join(_attribute(name, [value]) for name, value in single if value is not None)
    return f"<saml:AttributeStatement>{body}</saml:AttributeStatement>" if body else ""


@dataclass(frozen=True)
class _Issuance:
    issuer: str
    audience: str
    recipient: str
    in_response_to: str | None
    now: datetime
    not_on_or_after: datetime


def _assertion(vector: IdentityVector, ctx: _Issuance, assertion_id: str, xmlns: str = "") -> str:
    now, end = _instant(ctx.now), _instant(ctx.not_on_or_after)
    irt = f' InResponseTo="{_attr(ctx.in_response_to)}"' if ctx.in_response_to else ""
    authn = _instant(vector.auth_time or ctx.now)
    session = vector.session_index or new_id()
    return (
        f'<saml:Assertion{xmlns} ID="{assertion_id}" Version="2.0" IssueInstant="{now}">'
        f"<saml:Issuer>{escape(ctx.issuer)}</saml:Issuer>"
        f'<saml:Subject><saml:NameID Format="{PERSISTENT}">{escape(vector.subject)}</saml:NameID>'
        f'<saml:SubjectConfirmation Method="{BEARER}"><saml:SubjectConfirmationData'
        f' NotOnOrAfter="{end}" Recipient="{_attr(ctx.recipient)}"{irt}/>'
        "</saml:SubjectConfirmation></saml:Subject>"
        f'<saml:Conditions NotBefore="{now}" NotOnOrAfter="{end}"><saml:AudienceRestriction>'
        f"<saml:Audience>{escape(ctx.audience)}</saml:Audience></saml:AudienceRestriction>"
        f'</saml:Conditions><saml:AuthnStatement AuthnInstant="{authn}"'
        f' SessionIndex="{_attr(session)}"><saml:AuthnContext><saml:AuthnContextClassRef>'
        f"{escape(vector.acr)}</saml:AuthnContextClassRef></saml:AuthnContext>"
        f"</saml:AuthnStatement>{_attribute_statement(vector)}</saml:Assertion>"
    )


def _response(ctx: _Issuance, response_id: str, assertion: str) -> str:
    irt = f' InResponseTo="{_attr(ctx.in_response_to)}"' if ctx.in_response_to else ""
    return (
        f'<samlp:Response xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{response_id}"'
        f' Version="2.0" IssueInstant="{_instant(ctx.now)}"'
        f' Destination="{_attr(ctx.recipient)}"{irt}>'
        f"<saml:Issuer>{escape(ctx.issuer)}</saml:Issuer>"
        f'<samlp:Status><samlp:StatusCode Value="{SUCCESS}"/></samlp:Status>'
        f"{assertion}</samlp:Response>"
    )


def _parse_own(text: str) -> etree._Element:
    try:
        return etree.fromstring(text.encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"identity vector holds text XML cannot carry: {exc}") from exc


def issue(
    vector: IdentityVector,
    *,
    signer: SigningKey,
    issuer: str,
    audience: str,
    recipient: str,
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    in_response_to: str | None = None,
    sign_response: bool = True,
    assertion_only: bool = False,
    assertion_id: str | None = None,
) -> bytes:
    """Issue a signed jeton for ``audience``: a ``samlp:Response`` document (bytes).

    ``assertion_id`` (default: 160 random bits) lets the caller name the token, e.g.
    in an audit trail, without parsing the document again.

    The Assertion is always signed (enveloped signature after ``Issuer``,
    exclusive c14n, RSA-SHA256 or ECDSA-SHA256, SHA-256); the Response too when
    ``sign_response``. ``assertion_only`` returns the signed Assertion alone
    (Interops-A). The caller has minimised ``vector`` to the audience's services.
    ``now`` must be timezone-aware. Raises ``ValueError`` for a vector XML cannot
    carry (control characters) or a key without certificate.
    """
    material = _xmldsig.material(signer)
    ctx = _Issuance(issuer, audience, recipient, in_response_to, now, now + lifetime)
    assertion_id = assertion_id or new_id()
    if assertion_only:
        xmlns = f' xmlns:saml="{SAML_NS}"'
        root = _parse_own(_assertion(vector, ctx, assertion_id, xmlns))
        _xmldsig.sign_enveloped(root, material, position=1)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    assertion = _assertion(vector, ctx, assertion_id)
    root = _parse_own(_response(ctx, new_id(), assertion))
    _xmldsig.sign_enveloped(root[-1], material, position=1)
    if sign_response:
        _xmldsig.sign_enveloped(root, material, position=1)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# ---------------------------------------------------------------------- verify


def _document_bytes(document: bytes | str, max_size: int) -> bytes:
    """Check 1 (presence, size): raw XML, or base64 as posted by the HTTP-POST binding."""
    if not document:
        raise SecurityTokenUnavailable("no SAML token")
    try:
        data = (document.encode("utf-8") if isinstance(document, str) else document).strip()
    except UnicodeEncodeError as exc:  # lone surrogates: no text XML can carry
        raise InvalidSecurityToken("the SAML token is not Unicode text") from exc
    if not data:
        raise SecurityTokenUnavailable("no SAML token")
    if len(data) > max_size:
        raise InvalidSecurityToken(f"SAML token larger than {max_size} bytes")
    if data.startswith(b"<"):
        return data
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error as exc:
        raise InvalidSecurityToken("neither XML nor base64") from exc


def _single_assertion(root: etree._Element) -> etree._Element:
    assertions = list(root.iter(ASSERTION_TAG))
    if len(assertions) != 1 or assertions[0].getparent() is not root:
        raise FailedCheck(f"expected one Assertion child of the Response, found {len(assertions)}")
    return assertions[0]


def _refuse_stray_signatures(root: etree._Element, assertion: etree._Element) -> None:
    for signature in root.iter(_xmldsig.SIGNATURE_TAG):
        if signature.getparent() not in (root, assertion):
            raise FailedCheck("signature in an unexpected place")


def _check_status(response: etree._Element) -> None:
    code = response.find(f"{P}Status/{P}StatusCode")
    if code is None or code.get("Value") != SUCCESS:
        raise InvalidSecurityToken("the Response status is not Success")


def _signed_assertion(root: etree._Element, trust: Trust) -> tuple[etree._Element, str | None]:
    """Check 2: the verified Assertion (fresh tree) and the Response's Issuer, if any."""
    _xmldsig.refuse_duplicate_ids(root)
    certificates = trust.saml_certificates
    if root.tag == ASSERTION_TAG:
        return _xmldsig.verified_copy(root, certificates=certificates), None
    if root.tag != RESPONSE_TAG:
        raise InvalidSecurityToken("not a samlp:Response nor a saml:Assertion")
    # A signed Response is the whole document: verified in place (parse_xml dropped
    # comments and PIs, IDs are unique), then its Assertion inside it. Otherwise only
    # the Assertion is signed, and read from its own canonical copy.
    signed_response = root.find(_xmldsig.SIGNATURE_TAG) is not None
    if signed_response:
        _xmldsig.verified_within(root, certificates=certificates)
    assertion = _single_assertion(root)
    _refuse_stray_signatures(root, assertion)
    _check_status(root)
    response_issuer = root.findtext(f"{A}Issuer")
    verified = _xmldsig.verified_within if signed_response else _xmldsig.verified_copy
    return verified(assertion, certificates=certificates), response_issuer


def _text(element: etree._Element | None, what: str) -> str:
    """The whole text of a leaf element; refuses missing, empty or mixed content."""
    if element is None or len(element) or not element.text:
        raise InvalidSecurityToken(f"missing or malformed {what}")
    return str(element.text)


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidSecurityToken(f"malformed {what} {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _attributes(assertion: etree._Element) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{A}AttributeStatement/{A}Attribute"):
        name = attribute.get("Name", "")
        found = [_text(v, name) for v in attribute.iterfind(f"{A}AttributeValue")]
        values.setdefault(name, []).extend(found)
    return values


def _single(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name, [])
    if len(found) > 1:
        raise InvalidSecurityToken(f"attribute {name} has several values")
    return found[0] if found else None


def _habilitations(values: list[str]) -> tuple[Habilitation, ...]:
    try:
        return tuple(Habilitation.from_saml(v) for v in values)
    except ValueError as exc:
        raise InvalidSecurityToken(str(exc)) from exc


@dataclass(frozen=True)
class _Read:
    """What the signed Assertion says, before checks 3 to 8."""

    vector: IdentityVector
    issuer: str
    assertion_id: str
    not_before: datetime | None
    not_on_or_after: datetime | None
    confirmation_not_on_or_after: datetime | None
    audiences: list[list[str]]


def _audiences(conditions: etree._Element | None) -> list[list[str]]:
    if conditions is None:
        return []
    return [
        [_text(a, "Audience") for a in r.iterfind(f"{A}Audience")]
        for r in conditions.iterfind(f"{A}AudienceRestriction")
    ]


def _confirmation(assertion: etree._Element) -> etree._Element | None:
    path = f"{A}Subject/{A}SubjectConfirmation[@Method='{BEARER}']/{A}SubjectConfirmationData"
    return assertion.find(path)


def _vector(assertion: etree._Element, values: dict[str, list[str]]) -> IdentityVector:
    authn = assertion.find(f"{A}AuthnStatement")
    if authn is None:
        raise InvalidSecurityToken("missing AuthnStatement")
    acr = _text(authn.find(f"{A}AuthnContext/{A}AuthnContextClassRef"), "AuthnContextClassRef")
    return IdentityVector(
        subject=_text(assertion.find(f"{A}Subject/{A}NameID"), "NameID"),
        siret=_single(values, "siret"),
        family_name=_single(values, "nom"),
        given_name=_single(values, "prenom"),
        email=_single(values, "courriel"),
        pagm=tuple(values.get("PAGM", [])),
        habilitations=_habilitations(values.get("habilitation", [])),
        acr=acr,
        auth_time=_time(authn.get("AuthnInstant"), "AuthnInstant"),
        session_index=authn.get("SessionIndex"),
    )


def _read(assertion: etree._Element) -> _Read:
    if assertion.get("Version") != "2.0":
        raise InvalidSecurityToken("not a SAML 2.0 Assertion")
    conditions = assertion.find(f"{A}Conditions")
    times = conditions.attrib if conditions is not None else {}
    scd = _confirmation(assertion)
    return _Read(
        vector=_vector(assertion, _attributes(assertion)),
        issuer=_text(assertion.find(f"{A}Issuer"), "Issuer"),
        assertion_id=str(assertion.get("ID")),
        not_before=_time(times.get("NotBefore"), "NotBefore"),
        not_on_or_after=_time(times.get("NotOnOrAfter"), "NotOnOrAfter"),
        confirmation_not_on_or_after=_time(
            None if scd is None else scd.get("NotOnOrAfter"), "NotOnOrAfter"
        ),
        audiences=_audiences(conditions),
    )


def _check_window(read: _Read, now: datetime, skew: timedelta) -> datetime:
    """Check 3; returns the end of validity (``Conditions/@NotOnOrAfter``)."""
    end = read.not_on_or_after
    if end is None:
        raise InvalidVI("the assertion has no Conditions/@NotOnOrAfter")
    if read.not_before is not None and read.not_before > now + skew:
        raise InvalidVI("the assertion is not valid yet")
    if now - skew >= end:
        raise InvalidVI("the assertion has expired")
    confirmation_end = read.confirmation_not_on_or_after
    if confirmation_end is not None and now - skew >= confirmation_end:
        raise InvalidVI("the subject confirmation has expired")
    return end


def _check_issuer(read: _Read, response_issuer: str | None, expected: str | None) -> None:
    """Check 5: both the Assertion and the Response issuers are the trusted one."""
    if expected is None:
        raise InvalidIssuer("no trusted issuer configured")
    if read.issuer != expected or response_issuer not in (None, expected):
        raise InvalidIssuer(f"untrusted issuer {read.issuer!r}")


def _check_acr(acr: str, min_acr: str | None) -> None:
    """Check 6: the authentication context is at least ``min_acr`` (one of ``ACR_LEVELS``)."""
    if min_acr is None:
        return
    if acr not in ACR_LEVELS or ACR_LEVELS.index(acr) < ACR_LEVELS.index(min_acr):
        raise InvalidAuthLevel(f"authentication level {acr!r} below {min_acr!r}")


def _check_pagm(pagm: tuple[str, ...], known: Collection[str] | None) -> None:
    """Check 7: PAGM present, and every value known for the service."""
    if known is not None and (not pagm or not set(pagm) <= set(known)):
        raise InvalidPagm("PAGM missing or unknown for the service")


def _claims(read: _Read, audience: str, assertion: etree._Element) -> dict[str, object]:
    scd = _confirmation(assertion)
    get = (lambda _: None) if scd is None else scd.get
    return {
        "issuer": read.issuer,
        "audience": audience,
        "id": read.assertion_id,
        "not_before": read.not_before,
        "not_on_or_after": read.not_on_or_after,
        "in_response_to": get("InResponseTo"),
        "recipient": get("Recipient"),
        "authn_instant": read.vector.auth_time,
    }


def _check_audience(read: _Read, audience: str) -> None:
    """Check 4: ``audience`` is in every AudienceRestriction (and there is one)."""
    if not read.audiences or any(audience not in r for r in read.audiences):
        raise InvalidService(f"the assertion is not for audience {audience!r}")


def verify(
    document: bytes | str,
    *,
    trust: TrustAnchor,
    audience: str,
    issuer: str | None = None,
    now: datetime | None = None,
    skew: timedelta = DEFAULT_SKEW,
    replay: ReplayCache | None = None,
    min_acr: str | None = None,
    known_pagm: Collection[str] | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> IdentityVector:
    """Verify a jeton (Response, raw or base64, or bare Assertion); return its vector.

    Applies the profile's checks in order, raising the first failure's
    :class:`~token_suite.errors.InteropsError`: 1 well-formed, no DTD, size
    bounded; 2 signature by a key of ``trust`` only, allow-listed algorithms, no
    wrapping (the Assertion must be signed; a signed Response must verify too);
    3 validity window within ``skew``; 4 ``audience``; 5 issuer (``issuer`` or
    ``trust.issuer``); 6 ``min_acr``; 7 ``known_pagm``; 8 replay of the Assertion
    ``ID`` (``replay``, by default one process-wide in-memory cache). Everything
    returned comes from the signed Assertion; ``claims`` holds ``issuer``,
    ``audience``, ``id``, ``not_before``, ``not_on_or_after`` (datetimes),
    ``in_response_to``, ``recipient`` and ``authn_instant``. Comments are not
    signed content: ``a<!---->b`` in NameID reads ``ab`` (never truncated).

    Whatever ``document`` holds, only an :class:`InteropsError` escapes: any other
    exception is a defect, logged with the document's SHA-256 (never the document)
    and raised as :class:`~token_suite.errors.InvalidSecurity`
    (:func:`token_suite.errors.unexpected`). A naive ``now`` or an unknown ``min_acr`` is the
    caller's mistake: ``ValueError``, before the document is read.
    """
    now = _checked_arguments(now, min_acr)
    try:
        root = _xmldsig.parse_xml(_document_bytes(document, max_size))
        anchor = trust.for_saml()
        try:
            assertion, response_issuer = _signed_assertion(root, anchor)
        except FailedCheck:
            fresher = trust.refreshed_for_saml()  # the operator may have rotated its key
            if fresher is None:
                raise
            anchor = fresher
            assertion, response_issuer = _signed_assertion(root, anchor)
        read = _read(assertion)
        end = _check_window(read, now, skew)
        _check_audience(read, audience)
        _check_issuer(read, response_issuer, issuer if issuer is not None else anchor.issuer)
        _check_acr(read.vector.acr, min_acr)
        _check_pagm(read.vector.pagm, known_pagm)
        cache = replay if replay is not None else DEFAULT_REPLAY_CACHE
        if cache.seen(read.assertion_id, expires_at=_later(end, skew)):
            raise Replay(f"assertion {read.assertion_id} already presented")
        return replace(read.vector, claims=_claims(read, audience, assertion))
    except InteropsError:
        raise
    except Exception as exc:  # noqa: BLE001 - the documented boundary (errors.unexpected)
        raise unexpected(exc, "saml.verify", document) from None


def _checked_arguments(now: datetime | None, min_acr: str | None) -> datetime:
    """The caller's mistakes, before the document is read: a naive ``now``, an unknown
    ``min_acr`` (``ValueError``). Returns ``now``, the wall clock by default."""
    if min_acr is not None and min_acr not in ACR_LEVELS:
        raise ValueError(f"unknown authentication level {min_acr!r}")
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return now


#: The latest instant a ``datetime`` holds.
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def _later(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, at most :data:`_END_OF_TIME`: a ``NotOnOrAfter`` of
    9999-12-31T23:59:59Z plus the skew is remembered until the end of time, never
    an ``OverflowError``."""
    try:
        return moment + delta
    except OverflowError:
        return _END_OF_TIME
