"""What the atheris harnesses share with the pytest replay of their corpus (issue 19).

* **Seeds**: genuine tokens, each signed by a trusted test key at seed-making time,
  valid or refused at a later check (expired, another audience, odd claim types,
  far-future dates...), so that the checks after the signature are reached too.
  They live in ``tests/fuzz/corpus/<kind>/seed-*`` and their signed content in
  ``tests/fuzz/corpus/<kind>-signed.json``; ``python -m tests.fuzz.fuzz_support``
  writes them again.
* **Oracle** (:func:`check_jwt`, :func:`check_saml`): only an ``InteropsError``
  escapes ``verify``, never :class:`InvalidSecurity` (the boundary's answer to a
  defect), and an accepted input carries the signed content of a seed: the JWT's
  exact signing input and claims, the SAML assertion's ID and identity vector.
  Nothing else was ever signed by a trusted key, so anything else accepted is a
  forgery.
* **Mutators**: JSON-aware for the JWT (members of every JSON type, extreme dates,
  forbidden header members, non-canonical base64url, signatures of every length and
  the ES256 twin), XML-aware for SAML (odd namespace URIs, extreme instants, moved,
  copied and deleted elements); byte-level mutation is the caller's ``byte_mutate``
  (``atheris.Mutate`` under the fuzzer).
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.token_suite import jwt_support, saml_support
from tests.token_suite.jwt_support import RecordingCache
from token_suite import jwt, saml
from token_suite.errors import InteropsError, InvalidSecurity
from token_suite.vector import IdentityVector

CORPUS = Path(__file__).resolve().parent / "corpus"
NOW = jwt_support.NOW
JWT_TRUST = jwt_support.trust()
#: Larger inputs are cut by the harnesses (libFuzzer ``-max_len``).
MAX_JWT = 8192
MAX_SAML = 65536
ByteMutate = Callable[[bytes, int], bytes]


# ---------------------------------------------------------------------------- oracle


def _load_signed(kind: str) -> dict[str, Any]:
    path = CORPUS / f"{kind}-signed.json"
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


JWT_SIGNED: dict[str, Any] = _load_signed("jwt")  # signing input -> claims
SAML_SIGNED: dict[str, Any] = _load_signed("saml")  # assertion ID -> vector summary


class Finding(AssertionError):
    """The oracle's verdict: a defect (an escaped error) or a forgery (accepted)."""


def check_jwt(data: bytes) -> IdentityVector | None:
    """Run ``jwt.verify`` on ``data`` and apply the oracle; the vector when accepted."""
    try:
        vector = jwt.verify(
            data, trust=JWT_TRUST, audience=jwt_support.AUDIENCE, now=NOW, replay=RecordingCache()
        )
    except InvalidSecurity as exc:
        raise Finding(f"jwt.verify hit its boundary: {exc}") from exc
    except InteropsError:
        return None
    signing_input = data.rpartition(b".")[0].decode("ascii")
    if JWT_SIGNED.get(signing_input) != vector.claims:
        raise Finding(f"accepted a JWT whose content no trusted key signed: {data!r}")
    return vector


def summary(vector: IdentityVector) -> dict[str, Any]:
    """What a SAML seed's signature covers, comparable as JSON."""
    return {
        "subject": vector.subject,
        "siret": vector.siret,
        "names": [vector.family_name, vector.given_name, vector.email],
        "pagm": list(vector.pagm),
        "habilitations": [h.as_saml() for h in vector.habilitations],
        "acr": vector.acr,
        "auth_time": None if vector.auth_time is None else vector.auth_time.isoformat(),
        "session_index": vector.session_index,
        "claims": {k: str(v) for k, v in sorted(vector.claims.items())},
    }


def verify_saml(data: bytes) -> IdentityVector:
    """``saml.verify`` as the harness calls it: the trusted test key, fixed clock, fresh cache."""
    return saml.verify(
        data,
        trust=saml_support.TRUST,
        audience=saml_support.AUDIENCE,
        now=NOW,
        replay=RecordingCache(),
    )


def check_saml(data: bytes) -> IdentityVector | None:
    """Run ``saml.verify`` on ``data`` and apply the oracle; the vector when accepted."""
    try:
        vector = verify_saml(data)
    except InvalidSecurity as exc:
        raise Finding(f"saml.verify hit its boundary: {exc}") from exc
    except InteropsError:
        return None
    if SAML_SIGNED.get(str(vector.claims["id"])) != summary(vector):
        raise Finding(f"accepted a SAML jeton whose content no trusted key signed: {data!r}")
    return vector


# ------------------------------------------------------------------------- mutators

EXTREMES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    253402300799,
    253402300800,
    -253402300800,
    2**63,
    10**40,
    1e308,
    -1e308,
    5e-324,
    0.5,
    "",
    "ES256",
    "none",
    "HS256",
    "JWT",
    "at+jwt",
    "\u0000",
    "é" * 3,
    "x" * 300,
    [],
    ["ES256"],
    [1, None],
    {},
    {"alg": "ES256"},
    [[[[[]]]]],
]
HEADER_NAMES = ["alg", "kid", "typ", "cty", "crit", "jku", "jwk", "x5u", "x5c", "b64", "zip"]
CLAIM_NAMES = ["iss", "sub", "aud", "jti", "exp", "iat", "nbf", "auth_time", "acr"]
CLAIM_NAMES += ["pagm", "habilitations", "siret", "email", "sid", "amr"]
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def unb64(segment: bytes) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except ValueError:
        return None


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.5 or depth > 2:
        return rng.choice(EXTREMES)
    if roll < 0.65:
        return rng.randint(-(2**70), 2**70)
    if roll < 0.75:
        return "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 6)))
    if roll < 0.88:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    names = HEADER_NAMES + CLAIM_NAMES + ["service", "siret", "role"]
    return {rng.choice(names): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _mutate_object(value: dict[str, Any], names: list[str], rng: random.Random) -> None:
    roll = rng.random()
    if roll < 0.15 and value:
        del value[rng.choice(list(value))]
    elif roll < 0.55 or not value:
        value[rng.choice(names)] = _random_json(rng)
    else:
        name = rng.choice(list(value))
        inner = value[name]
        if isinstance(inner, dict) and inner:
            _mutate_object(inner, list(inner) + ["service", "siret", "role"], rng)
        elif isinstance(inner, list) and inner and rng.random() < 0.5:
            inner[rng.randrange(len(inner))] = _random_json(rng)
        else:
            value[name] = _random_json(rng)


def _write_json(value: Any, rng: random.Random) -> bytes:
    style = rng.randrange(4)
    if style == 0:
        return json.dumps(value, separators=(",", ":")).encode()
    if style == 1:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if style == 2 and isinstance(value, dict) and value:  # a duplicate member
        text = json.dumps(value, separators=(",", ":"))
        name = rng.choice(list(value))
        return f"{text[:-1]},{json.dumps(name)}:{json.dumps(_random_json(rng))}}}".encode()
    return json.dumps(value, indent=rng.choice([None, 1])).encode()


def _mutate_signature(signature: bytes, rng: random.Random) -> bytes:
    raw = unb64(signature) or b""
    choice = rng.randrange(8)
    if choice == 0 and len(raw) == 64:  # the ES256 twin (r, n - s)
        s = int.from_bytes(raw[32:], "big")
        return b64(raw[:32] + ((P256_N - s) % 2**256).to_bytes(32, "big"))
    variants = [
        raw[1:],
        b"\0" + raw,
        raw + b"\0",
        raw[:-1],
        bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 63, 64, 65, 255, 256, 257]))),
        raw[:5] + bytes([raw[5] ^ 1]) + raw[6:] if len(raw) > 6 else raw,
    ]
    if choice == 7:
        return signature + b"="
    return b64(variants[choice % len(variants)])


def mutate_jwt(data: bytes, max_size: int, seed: int, byte_mutate: ByteMutate) -> bytes:
    """One JSON-aware mutation of a compact JWS (or a byte-level one)."""
    rng = random.Random(seed)
    parts = data.split(b".")
    if len(parts) != 3 or rng.random() < 0.2:
        return byte_mutate(data, max_size)
    where = rng.choice([0, 0, 1, 1, 2])
    if where == 2:
        parts[2] = _mutate_signature(parts[2], rng)
    else:
        decoded = unb64(parts[where])
        try:
            value = json.loads(decoded) if decoded is not None else None
        except ValueError:
            value = None
        if isinstance(value, dict):
            _mutate_object(value, HEADER_NAMES if where == 0 else CLAIM_NAMES, rng)
            parts[where] = b64(_write_json(value, rng))
        else:
            parts[where] = b64(byte_mutate(decoded or b"{}", max(2, max_size // 2)))
        if rng.random() < 0.1 and len(parts[where]) % 4 in (2, 3):  # non-canonical last char
            parts[where] = parts[where][:-1] + b"B"
    return b".".join(parts)[:max_size]


ODD_URIS = ["relative", "../x", "#f", "a b", "%zz", "urn:", "", "http://[::1", "x:y z", "é"]
INSTANTS = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2025-03-01T10:05:00+01:00",
    "2025-02-30T00:00:00Z",
    "2025-03-01",
    "garbage",
    "",
]
TIME_ATTRIBUTE = re.compile(rb'(NotBefore|NotOnOrAfter|IssueInstant|AuthnInstant)="[^"]*"')
START_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)([^<>]*?)(/?)>")
ELEMENT = re.compile(rb"<((saml|samlp|ds):[A-Za-z]+)\b[^<>]*>.*?</\1>", re.DOTALL)


def mutate_saml(data: bytes, max_size: int, seed: int, byte_mutate: ByteMutate) -> bytes:
    """One XML-aware mutation of a SAML document (or a byte-level one)."""
    rng = random.Random(seed)
    roll = rng.random()
    if roll < 0.25:
        return byte_mutate(data, max_size)
    if roll < 0.45:  # a namespace declaration with an odd URI on some start tag
        tags = list(START_TAG.finditer(data))
        if not tags:
            return byte_mutate(data, max_size)
        tag = rng.choice(tags)
        name = rng.choice([b"xmlns:zz", b"xmlns", b"xmlns:saml", b"xmlns:ds"])
        uri = rng.choice(ODD_URIS).encode()
        at = tag.end(1)
        return (data[:at] + b" " + name + b'="' + uri + b'"' + data[at:])[:max_size]
    if roll < 0.65:  # an extreme instant
        times = list(TIME_ATTRIBUTE.finditer(data))
        if not times:
            return byte_mutate(data, max_size)
        found = rng.choice(times)
        value = f'{found.group(1).decode()}="{rng.choice(INSTANTS)}"'.encode()
        return (data[: found.start()] + value + data[found.end() :])[:max_size]
    elements = list(ELEMENT.finditer(data))
    if not elements:
        return byte_mutate(data, max_size)
    first, second = rng.choice(elements), rng.choice(elements)
    piece = data[first.start() : first.end()]
    if roll < 0.8:  # delete an element
        return data[: first.start()] + data[first.end() :]
    if roll < 0.92:  # copy an element before another (wrapping)
        return (data[: second.start()] + piece + data[second.start() :])[:max_size]
    return (data[: second.end()] + piece + data[second.end() :])[:max_size]


def python_byte_mutate(data: bytes, max_size: int) -> bytes:
    """A small byte-level mutation for runs without atheris (the corpus test)."""
    rng = random.Random(len(data) * 7919 + sum(data[:64]))
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(3)
        position = rng.randrange(len(buffer) + 1)
        if action == 0 and buffer:
            del buffer[min(position, len(buffer) - 1)]
        elif action == 1:
            buffer.insert(position, rng.randrange(256))
        elif buffer:
            buffer[min(position, len(buffer) - 1)] ^= 1 << rng.randrange(8)
    return bytes(buffer[:max_size])


# ---------------------------------------------------------------------------- seeds


def _jwt_seeds() -> list[str]:
    """Genuine JWTs by the trusted keys, valid or refused at a later check."""
    vector = jwt_support.VECTOR
    issue = jwt.issue
    common: dict[str, Any] = {"issuer": jwt_support.ISSUER, "audience": jwt_support.AUDIENCE}
    seeds = [issue(vector, signer=key, now=NOW, **common) for key in _jwt_keys()]
    seeds.append(issue(vector, signer=jwt_support.ES256, now=NOW - timedelta(hours=1), **common))
    seeds.append(
        issue(vector, signer=jwt_support.ES256, now=NOW, issuer="https://other", audience="urn:x")
    )
    seeds.append(
        issue(
            vector,
            signer=jwt_support.ES256,
            now=NOW,
            typ="at+jwt",
            lifetime=timedelta(minutes=15),
            extra_claims={"client_id": "c", "scope": "openid"},
            **common,
        )
    )
    base = json.loads(unb64(seeds[0].split(".")[1].encode()) or b"{}")
    for changes in (
        {"exp": 253402300799},
        {"habilitations": [{"service": "", "siret": "1", "role": "R"}]},
        {"aud": [jwt_support.AUDIENCE, "urn:x"]},
        {"auth_time": 1e300},
        {"pagm": ["a", 1]},
        {"acr": None, "amr": None},
    ):
        seeds.append(_signed_claims({**base, **changes}))
    return seeds


def _jwt_keys() -> list[Any]:
    return [jwt_support.ES256, jwt_support.RS256, jwt_support.PS256]


def _signed_claims(claims: dict[str, Any]) -> str:
    key = jwt_support.ES256
    header = b64(json.dumps({"alg": key.alg, "kid": key.kid, "typ": "JWT"}).encode())
    signing_input = header + b"." + b64(json.dumps(claims).encode())
    from token_suite import _jws

    return (signing_input + b"." + b64(_jws.build_signer(key)(signing_input))).decode()


def _saml_seeds() -> list[bytes]:
    """Genuine jetons by the trusted key: Response, bare Assertion, refused ones."""
    issue = saml_support.issue
    far = "9999-12-31T23:59:59Z"

    def far_future(assertion: Any) -> None:
        assertion.find("saml:Conditions", saml_support.NS).set("NotOnOrAfter", far)

    return [
        issue(),
        issue(sign_response=False),
        issue(assertion_only=True),
        issue(now=NOW - timedelta(hours=1)),
        issue(audience="urn:other"),
        issue(vector=IdentityVector(subject="NON_RENSEIGNE")),
        saml_support.crafted(far_future),
    ]


def write_seeds() -> None:
    """(Re)write the seed files and the signed content the oracle accepts."""
    for kind in ("jwt", "saml"):
        (CORPUS / kind).mkdir(parents=True, exist_ok=True)
        for old in (CORPUS / kind).glob("seed-*"):
            old.unlink()
    signed: dict[str, Any] = {}
    for number, token in enumerate(_jwt_seeds()):
        (CORPUS / "jwt" / f"seed-{number:02d}").write_bytes(token.encode())
        signed[token.rpartition(".")[0]] = json.loads(unb64(token.split(".")[1].encode()) or b"")
    (CORPUS / "jwt-signed.json").write_text(json.dumps(signed, indent=1, sort_keys=True) + "\n")
    accepted: dict[str, Any] = {}
    for number, document in enumerate(_saml_seeds()):
        (CORPUS / "saml" / f"seed-{number:02d}").write_bytes(document)
        try:
            vector = verify_saml(document)
        except InteropsError:
            continue
        accepted[str(vector.claims["id"])] = summary(vector)
    (CORPUS / "saml-signed.json").write_text(json.dumps(accepted, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_seeds()
