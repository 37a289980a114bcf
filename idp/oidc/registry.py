"""The partner registry as the token endpoint reads it: cached in the process, no SQL per
request (:mod:`idp.stores.generations` drops these caches within a second of a change
made anywhere: a revoked client or a changed secret is refused by then).

Cached values are rows loaded on a session of their own and detached, with everything
the OAuth paths read loaded eagerly (the client's partner, its services, SAML settings
and clients); they are shared by the threads of the process and never changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from idp.stores.generations import Generations, generations
from partners.models import OAuthClient, Partner
from partners.services import services_of
from rcd_store.models import Service, ServicePagm

#: the cache of registry reads; dropped when partners or services change
REGISTRY = "oauth-registry"

_PARTNER_LOADS = (
    selectinload(Partner.services),
    selectinload(Partner.saml),
    selectinload(Partner.clients),
)


def init_app(app: Flask) -> None:
    """Drop the registry cache when partners (clients included) or services change."""
    gens: Generations = generations(app)
    for name in ("partners", "services"):
        gens.on_change(name, lambda: gens.invalidate(REGISTRY))


def client(client_id: str) -> OAuthClient | None:
    """The registered client ``client_id`` (``None`` if unknown), with its partner."""

    def load(session: Session) -> OAuthClient | None:
        stmt = (
            select(OAuthClient)
            .where(OAuthClient.client_id == client_id)
            .options(joinedload(OAuthClient.partner).options(*_PARTNER_LOADS))
        )
        return session.scalars(stmt).first()

    return generations().cached(REGISTRY, ("client", client_id), load)


def partner_services(partner: Partner) -> tuple[Service, ...]:
    """:func:`partners.services.services_of` ``partner``: registered and hosted services."""

    def load(session: Session) -> tuple[Service, ...]:
        return tuple(services_of(session, partner))

    return generations().cached(REGISTRY, ("services", partner.id), load)


def names_a_party(audience: str) -> bool:
    """Whether ``audience`` is a partner's identifier or a client id: the audience of
    that party's navigation, DSN login or ID tokens, never of an access token."""

    def load(session: Session) -> bool:
        partner = select(Partner.id).where(Partner.identifier == audience)
        found = select(OAuthClient.id).where(OAuthClient.client_id == audience)
        return session.execute(partner.union_all(found).limit(1)).first() is not None

    return generations().cached(REGISTRY, ("party", audience), load)


def partner_by_api(audience: str) -> Partner | None:
    """The partner whose ``api_audience`` is ``audience``, if any."""

    def load(session: Session) -> Partner | None:
        stmt = select(Partner).where(Partner.api_audience == audience).options(*_PARTNER_LOADS)
        return session.scalars(stmt).first()

    return generations().cached(REGISTRY, ("api", audience), load)


def declarant_pagm(services: Iterable[Service]) -> tuple[str, ...]:
    """The PAGM agreed for the role DECLARANT on ``services`` (identity-only ones excluded)."""
    ids = tuple(sorted(s.id for s in services if not s.identity_only))
    if not ids:
        return ()

    def load(session: Session) -> tuple[str, ...]:
        rows = session.scalars(
            select(ServicePagm.pagm).where(
                ServicePagm.service_id.in_(ids), ServicePagm.role == "DECLARANT"
            )
        )
        return tuple(sorted(set(rows)))

    return generations().cached(REGISTRY, ("pagm", ids), load)
