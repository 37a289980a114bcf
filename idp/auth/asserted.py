"""Who a partner may assert: one rule for every identity we did not authenticate ourselves.

A partner vouches for a declarant it authenticated: a trusted portal posting a jeton
(:mod:`idp.saml.inbound`), a client presenting a JWT bearer assertion
(:mod:`idp.oidc.exchange`). Both paths call :func:`assertable`, which accepts the
declarant only when

- she is active (a disabled, locked or pending declarant is never asserted);
- her account is not locked by our lockout (:mod:`idp.auth.throttle`): the lock that stops
  password guessing holds on every path that opens a session or issues a token;
- the partner serves her (:func:`serves`): she holds an active habilitation on a
  service the partner receives, which covers her own company's establishments and
  those her company holds by mandate (habilitations are per establishment). Stops a
  partner from opening sessions or obtaining tokens for people it has no business with.

The level a partner claims is never taken as ours: callers record
:data:`idp.oidc.grants.ASSERTED_ACR` (``amr`` empty), whatever the partner says.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from idp.auth.throttle import throttle
from partners.models import Partner
from partners.services import services_of
from rcd_store.models import Declarant, DeclarantStatus
from rcd_store.services import active_habilitations


class NotAssertable(Exception):
    """The partner may not assert this subject: ``reason`` says why (English, for the
    Interops error and the audit), ``description`` in French (for an OAuth error)."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.description = description


def serves(session: Session, partner: Partner, declarant_id: str) -> bool:
    """True when the declarant holds an active habilitation on one of the partner's
    services (:func:`partners.services.services_of`)."""
    offered = {s.id for s in services_of(session, partner)}
    return any(h.service_id in offered for h in active_habilitations(session, declarant_id))


def acting(declarant: Declarant | None) -> Declarant:
    """``declarant`` if a token may still be issued for her: active and not locked.
    Every path that issues a token for a person checks it (assertions here, refresh and
    token exchange in :mod:`idp.oidc.grants` and :mod:`idp.oidc.exchange`); raises
    :class:`NotAssertable` otherwise."""
    if declarant is None or declarant.status != DeclarantStatus.ACTIVE.value:
        raise NotAssertable(
            "the subject is not an active declarant", "Ce declarant n'est pas actif."
        )
    if throttle().account_locked(declarant.id):
        raise NotAssertable(
            "the declarant's account is locked", "Le compte de ce declarant est verrouille."
        )
    return declarant


def assertable(session: Session, partner: Partner, subject: str) -> Declarant:
    """The declarant ``partner`` asserts as ``subject``, if it may (see the module);
    raises :class:`NotAssertable` otherwise, and nothing is changed."""
    declarant = acting(session.get(Declarant, subject))
    if not serves(session, partner, declarant.id):
        raise NotAssertable(
            "the partner does not serve this declarant",
            "Ce declarant n'a pas d'habilitation chez ce partenaire.",
        )
    return declarant
