"""The demo partner site: the reference integration of a partner organism.

A small Flask app, separate from the identity provider, that knows the operator
only by its public documents (``/saml/metadata``, the OpenID Connect discovery
document and its JWKS, all fetched over HTTP) and verifies every token with
``token_suite`` alone. It shows who arrived: declarant id, names, SIRET, PAGM
and habilitations.

- SAML service provider: ``/saml/metadata`` (its own key and certificate, kept in
  its folder), ``/saml/acs`` (jetons from portal navigation, or answers to its
  own AuthnRequests), ``/saml/login`` (SP-initiated, HTTP-Redirect, signed),
  ``/saml/slo`` (Single Logout both ways).
- OpenID Connect relying party (public client): ``/oidc/login`` (code + PKCE
  S256, state, nonce), ``/oidc/callback``.
- ``POST /deconnexion``: RP-initiated (OIDC) or SP-initiated (SAML) logout.

Arrivals are kept server side, keyed by the operator's session id (the SAML
SessionIndex, the OIDC ``sid``), so a LogoutRequest from the operator ends them
even when the browser's cookie does not come along (a logout page in a frame).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import unicodedata
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, Response, abort, redirect, render_template, request, session
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from idp.demo_partner_api import api_blueprint
from keys.generate import generate_key
from keys.io import export_pem, import_pem
from keys.model import KeyUse, SigningKey
from token_suite import Trust, saml
from token_suite import jwt as interops_jwt
from token_suite.errors import InteropsError
from token_suite.replay import InMemoryReplayCache

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
CACHE = timedelta(minutes=5)


def slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


@dataclass(frozen=True)
class PartnerSite:
    """Where the partner lives and whom it trusts."""

    name: str
    base_url: str
    idp_url: str
    folder: Path
    service: str = "DSN"
    #: PAGM allowing its API's operation (any one of them; Interops-A)
    api_pagm: tuple[str, ...] = ("DSN_DECLARANT",)

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/saml/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/saml/acs"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/saml/slo"

    @property
    def callback_url(self) -> str:
        return f"{self.base_url}/oidc/callback"

    @property
    def logged_out_url(self) -> str:
        return f"{self.base_url}/deconnecte"

    @property
    def api_audience(self) -> str:
        """The API's identifier: the audience of the tokens it accepts (Interops-A)."""
        return f"{self.base_url}/api"

    @property
    def client_id(self) -> str:
        return f"demo-{slug(self.name)}"


# ------------------------------------------------------------------ key, metadata


def load_key(folder: Path) -> SigningKey:
    """The partner's SAML key and certificate, generated once into ``folder``."""
    path = folder / "saml-key.pem"
    now = datetime.now(UTC)
    if path.exists():
        return import_pem(path.read_bytes(), use=KeyUse.SAML, now=now)
    folder.mkdir(parents=True, exist_ok=True)
    key = generate_key(KeyUse.SAML, now=now, alg="RS256")
    path.touch(mode=0o600)
    path.write_bytes(export_pem(key, include_certificate=True))
    return key


def sp_metadata(site: PartnerSite, key: SigningKey) -> bytes:
    """The partner's SAML SP metadata: entityID, signing certificate, ACS and SLO."""
    assert key.certificate is not None
    cert = base64.b64encode(key.certificate.public_bytes(serialization.Encoding.DER)).decode()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="{MD_NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    entityID={quoteattr(site.entity_id)}>
  <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true"
      protocolSupportEnumeration="{SAMLP_NS}">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="{REDIRECT}" Location={quoteattr(site.slo_url)}/>
    <md:AssertionConsumerService Binding="{POST}" Location={quoteattr(site.acs_url)}
        index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
""".encode()


# --------------------------------------------------------------- the operator


def _fetch(url: str, data: dict[str, str] | None = None) -> bytes:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=10) as response:
        return bytes(response.read(1024 * 1024))


def _parse(xml: bytes) -> etree._Element:
    """Untrusted XML: no DTD, no entities, no network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("DOCTYPE refusé")
    return root


Fetch = Callable[[str, "dict[str, str] | None"], bytes]


@dataclass
class Operator:
    """What the partner knows of the identity provider, fetched from its public URLs."""

    idp_url: str
    fetch: Fetch = _fetch
    _saml: tuple[float, Trust, dict[str, str]] | None = None
    _oidc: tuple[float, dict[str, Any], Trust] | None = None

    def saml(self) -> tuple[Trust, dict[str, str]]:
        """Trust (certificates, entityID) and endpoints from the signed SAML metadata."""
        if self._saml is None or self._saml[0] < time.monotonic():
            document = self.fetch(f"{self.idp_url}/saml/metadata", None)
            trust = Trust.from_metadata(document)
            endpoints = {}
            for tag in ("SingleSignOnService", "SingleLogoutService"):
                for node in _parse(document).iter(f"{{{MD_NS}}}{tag}"):
                    if node.get("Binding") == REDIRECT:
                        endpoints[tag] = str(node.get("Location"))
            self._saml = (time.monotonic() + CACHE.total_seconds(), trust, endpoints)
        return self._saml[1], self._saml[2]

    def oidc(self) -> tuple[dict[str, Any], Trust]:
        """The discovery document and the JWKS it names."""
        if self._oidc is None or self._oidc[0] < time.monotonic():
            discovery = json.loads(
                self.fetch(f"{self.idp_url}/.well-known/openid-configuration", None)
            )
            jwks = json.loads(self.fetch(discovery["jwks_uri"], None))
            trust = Trust.from_jwks(jwks, issuer=discovery["issuer"])
            self._oidc = (time.monotonic() + CACHE.total_seconds(), discovery, trust)
        return self._oidc[1], self._oidc[2]


# ------------------------------------------------------------------- arrivals


@dataclass
class Arrivals:
    """Who arrived in which browser (local id -> protocol -> arrival), server side."""

    by_browser: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, local: str, protocol: str, arrival: dict[str, Any]) -> None:
        with self.lock:
            self.by_browser.setdefault(local, {})[protocol] = arrival

    def of(self, local: str | None) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.by_browser.get(local or "", {}))

    def pop(self, local: str | None) -> dict[str, dict[str, Any]]:
        with self.lock:
            return self.by_browser.pop(local or "", {})

    def end(self, subject: str, sids: list[str]) -> int:
        """End every arrival of ``subject`` in one of the operator's sessions ``sids``
        (all of the subject's when no SessionIndex was given)."""
        ended = 0
        with self.lock:
            for arrivals in self.by_browser.values():
                for protocol, arrival in list(arrivals.items()):
                    if arrival["subject"] == subject and (not sids or arrival.get("sid") in sids):
                        del arrivals[protocol]
                        ended += 1
        return ended


def _arrival(protocol: str, vector: Any, sid: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "subject": vector.subject,
        "family_name": vector.family_name,
        "given_name": vector.given_name,
        "siret": vector.siret,
        "pagm": list(vector.pagm),
        "habilitations": [h.as_saml() for h in vector.habilitations],
        "acr": vector.acr,
        "sid": sid,
        "at": datetime.now(UTC).strftime("%H:%M:%S"),
        **extra,
    }


# ------------------------------------------------------- SAML HTTP-Redirect binding


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _redirect_query(kind: str, xml: str, key: SigningKey, relay_state: str | None = None) -> str:
    """Deflate, base64, and sign the query (RSA-SHA256) as the HTTP-Redirect binding says."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(compressor.compress(xml.encode()) + compressor.flush()).decode()
    parts = [f"{kind}={urllib.parse.quote_plus(encoded)}"]
    if relay_state:
        parts.append(f"RelayState={urllib.parse.quote_plus(relay_state)}")
    parts.append(f"SigAlg={urllib.parse.quote_plus(RSA_SHA256)}")
    signature = base64.b64encode(key.sign("&".join(parts).encode("ascii"))).decode()
    return "&".join([*parts, f"Signature={urllib.parse.quote_plus(signature)}"])


def _verified_redirect(kind: str, trust: Trust) -> etree._Element:
    """The operator's signed HTTP-Redirect message: signature over the exact query
    octets with a certificate of its metadata (RSA-SHA256 only), then parsed."""
    raw = {part.split(b"=", 1)[0]: part for part in request.query_string.split(b"&")}
    signed = b"&".join(raw[n] for n in (kind.encode(), b"RelayState", b"SigAlg") if n in raw)
    if request.args.get("SigAlg") != RSA_SHA256 or "Signature" not in request.args:
        raise ValueError("message non signé ou algorithme refusé")
    signature = base64.b64decode(request.args["Signature"])
    if not any(_rsa_verifies(cert, signature, signed) for cert in trust.saml_certificates):
        raise ValueError("signature invalide")
    inflater = zlib.decompressobj(-15)
    xml = inflater.decompress(base64.b64decode(request.args[kind]), 64 * 1024)
    root = _parse(xml)
    issuer = root.findtext(f"{{{SAML_NS}}}Issuer")
    if issuer != trust.issuer:
        raise ValueError("émetteur inattendu")
    return root


def _rsa_verifies(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _saml_message(
    tag: str, destination: str, issuer: str, body: str, **attrs: str
) -> tuple[str, str]:
    """(ID, XML) of a protocol message; every value is ours, escaped."""
    message_id = f"_{secrets.token_hex(16)}"
    extra = "".join(f" {name}={quoteattr(value)}" for name, value in attrs.items())
    return message_id, (
        f'<samlp:{tag} xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{message_id}" '
        f'Version="2.0" IssueInstant="{_instant(datetime.now(UTC))}" '
        f"Destination={quoteattr(destination)}{extra}>"
        f"<saml:Issuer>{escape(issuer)}</saml:Issuer>{body}</samlp:{tag}>"
    )


# ------------------------------------------------------------------------ app


def create_partner_app(
    site: PartnerSite, *, secret_key: str | None = None, fetch: Fetch = _fetch
) -> Flask:
    """The partner's web app (its own cookie name, so several run side by side);
    ``fetch`` reaches the operator (HTTP by default)."""
    app = Flask(__name__, template_folder="templates/partner", static_folder=None)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_urlsafe(32),
        SESSION_COOKIE_NAME=f"partenaire_{slug(site.name)}",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    key = load_key(site.folder)
    operator = Operator(site.idp_url, fetch)
    arrivals = Arrivals()
    replay = InMemoryReplayCache()

    def local_id() -> str:
        if "local" not in session:
            session["local"] = secrets.token_urlsafe(16)
            session["csrf"] = secrets.token_urlsafe(16)
        return str(session["local"])

    def page(template: str, status: int = 200, **context: Any) -> Response:
        local_id()
        html = render_template(template, site=site, csrf=session["csrf"], **context)
        return Response(html, status=status, headers={"Cache-Control": "no-store"})

    def refused(message: str, status: int = 401) -> Response:
        return page("message.html", status, title="Connexion refusée", message=message)

    @app.get("/")
    def home() -> Response:
        return page("home.html", arrivals=arrivals.of(session.get("local")))

    @app.get("/saml/metadata")
    def metadata() -> Response:
        return Response(sp_metadata(site, key), mimetype="application/samlmetadata+xml")

    @app.get("/saml/login")
    def saml_login() -> Response:
        """SP-initiated SSO: a signed AuthnRequest by HTTP-Redirect."""
        _, endpoints = operator.saml()
        destination = endpoints["SingleSignOnService"]
        request_id, xml = _saml_message(
            "AuthnRequest",
            destination,
            site.entity_id,
            "",
            AssertionConsumerServiceURL=site.acs_url,
            ProtocolBinding=POST,
        )
        session["pending"] = [*session.get("pending", [])[-4:], request_id]
        return redirect(f"{destination}?{_redirect_query('SAMLRequest', xml, key)}")  # type: ignore[return-value]

    @app.post("/saml/acs")
    def acs() -> Response:
        """A jeton: verified with token_suite against the operator's metadata only."""
        trust, _ = operator.saml()
        try:
            vector = saml.verify(
                request.form.get("SAMLResponse", ""),
                trust=trust,
                audience=site.entity_id,
                replay=replay,
            )
        except InteropsError as error:
            return refused(f"Jeton refusé : {error.code} ({error.reason})")
        answered = vector.claims["in_response_to"]
        if vector.claims["recipient"] != site.acs_url or (
            answered is not None and answered not in session.get("pending", [])
        ):
            return refused("Jeton refusé : destinataire ou demande inattendus")
        origin = "connexion SAML" if answered else "navigation depuis le portail"
        arrivals.add(
            local_id(), "saml", _arrival("saml", vector, vector.session_index, origin=origin)
        )
        return redirect("/")  # type: ignore[return-value]

    @app.get("/oidc/login")
    def oidc_login() -> Response:
        """Authorization code flow with PKCE (S256), state and nonce."""
        discovery, _ = operator.oidc()
        verifier, state, nonce = (secrets.token_urlsafe(48) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        session["oidc"] = {"verifier": verifier, "state": state, "nonce": nonce}
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": site.client_id,
                "redirect_uri": site.callback_url,
                "scope": "openid profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
            }
        )
        return redirect(f"{discovery['authorization_endpoint']}?{query}")  # type: ignore[return-value]

    @app.get("/oidc/callback")
    def oidc_callback() -> Response:
        discovery, trust = operator.oidc()
        pending = session.pop("oidc", None)
        if not pending or request.args.get("state") != pending["state"]:
            return refused("Réponse OpenID Connect inattendue (state)", 400)
        if request.args.get("iss", discovery["issuer"]) != discovery["issuer"]:
            return refused("Réponse OpenID Connect d'un autre émetteur (iss)", 400)
        if "error" in request.args:
            return refused(f"Connexion refusée par le service d'identité : {request.args['error']}")
        answer = json.loads(
            operator.fetch(
                discovery["token_endpoint"],
                {
                    "grant_type": "authorization_code",
                    "code": request.args.get("code", ""),
                    "redirect_uri": site.callback_url,
                    "client_id": site.client_id,
                    "code_verifier": pending["verifier"],
                },
            )
        )
        try:
            vector = interops_jwt.verify(
                answer["id_token"], trust=trust, audience=site.client_id, replay=replay
            )
        except InteropsError as error:
            return refused(f"id_token refusé : {error.code} ({error.reason})")
        if vector.claims.get("nonce") != pending["nonce"]:
            return refused("id_token refusé : nonce inattendu")
        arrivals.add(
            local_id(),
            "oidc",
            _arrival(
                "oidc",
                vector,
                vector.claims.get("sid"),
                origin="connexion OpenID Connect",
                id_token=answer["id_token"],
            ),
        )
        return redirect("/")  # type: ignore[return-value]

    @app.post("/deconnexion")
    def logout() -> Response:
        """Local logout, then at the operator: RP-initiated (OIDC) or a LogoutRequest (SAML)."""
        if request.form.get("csrf") != session.get("csrf"):
            abort(400)
        ended = arrivals.pop(session.get("local"))
        if "oidc" in ended:
            discovery, _ = operator.oidc()
            query = urllib.parse.urlencode(
                {
                    "id_token_hint": ended["oidc"]["id_token"],
                    "post_logout_redirect_uri": site.logged_out_url,
                }
            )
            return redirect(f"{discovery['end_session_endpoint']}?{query}")  # type: ignore[return-value]
        if "saml" in ended:
            _, endpoints = operator.saml()
            destination = endpoints["SingleLogoutService"]
            arrival = ended["saml"]
            body = (
                f'<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">'
                f"{escape(arrival['subject'])}</saml:NameID>"
                f"<samlp:SessionIndex>{escape(arrival['sid'] or '')}</samlp:SessionIndex>"
            )
            _, xml = _saml_message("LogoutRequest", destination, site.entity_id, body)
            return redirect(f"{destination}?{_redirect_query('SAMLRequest', xml, key)}")  # type: ignore[return-value]
        return redirect(site.logged_out_url)  # type: ignore[return-value]

    @app.get("/deconnecte")
    def logged_out() -> Response:
        return page("message.html", title="Déconnexion", message="Vous êtes déconnecté.")

    @app.get("/saml/slo")
    def slo() -> Response:
        """The operator's LogoutRequest (ends the arrivals of that session, answers a
        signed LogoutResponse) or its LogoutResponse to ours."""
        trust, endpoints = operator.saml()
        kind = "SAMLRequest" if "SAMLRequest" in request.args else "SAMLResponse"
        try:
            root = _verified_redirect(kind, trust)
        except (ValueError, KeyError, zlib.error, etree.XMLSyntaxError) as error:
            return refused(f"Message de déconnexion refusé : {error}", 400)
        if kind == "SAMLResponse":
            return redirect(site.logged_out_url)  # type: ignore[return-value]
        subject = root.findtext(f"{{{SAML_NS}}}NameID") or ""
        sids = [node.text or "" for node in root.iter(f"{{{SAMLP_NS}}}SessionIndex")]
        arrivals.end(subject, sids)
        destination = endpoints["SingleLogoutService"]
        status = f'<samlp:Status><samlp:StatusCode Value="{SUCCESS}"/></samlp:Status>'
        _, answer = _saml_message(
            "LogoutResponse", destination, site.entity_id, status, InResponseTo=str(root.get("ID"))
        )
        relay_state = request.args.get("RelayState")
        return redirect(
            f"{destination}?{_redirect_query('SAMLResponse', answer, key, relay_state)}"
        )  # type: ignore[return-value]

    app.register_blueprint(api_blueprint(site, operator))
    return app
