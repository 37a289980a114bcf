"""Refreshing service providers' SAML metadata from their URL, on a schedule.

A row is due when its ``metadata_next_fetch_at`` has passed. It is first *claimed*: its
next fetch moved past a lease by a compare-and-set UPDATE, committed before the fetch, so
two refreshers (threads, ``idp serve`` workers, ``idp partner refresh-metadata``) never
fetch it at once; the result is applied only if the claim is still this refresher's. No
database transaction is held while fetching.

A fetched document is checked as an imported one (:mod:`partners.saml_metadata`: its
signature when the partner gave a key for it, its ``validUntil``), and more: the
entityID must not change, and it must keep at least one of the current signing or
encryption keys and one of the current assertion consumer services (a document that
would drop them all is a substitution, not a rollover: an operator imports it with
``idp partner edit --saml-metadata``). A refused or failed refresh keeps the old
metadata, is recorded in ``metadata_error`` (and counted in ``metadata_failures``, the
failures in a row), audited and logged, and is tried again after a delay doubling from
the retry delay up to the refresh interval. A successful one clears the error, is audited, and (by the change of
``saml_sp``) bumps the ``partners`` generation: every worker sees the new keys within a
second (``idp.stores.generations``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partners import saml_metadata
from partners.models import SamlServiceProvider
from rcd_store import audit
from rcd_store.db import rows_affected, utcnow
from rcd_store.errors import DirectoryError
from token_suite.metadata import parse_sp_metadata

log = logging.getLogger(__name__)

REFRESHED = "partner.metadata_refreshed"
FAILED = "partner.metadata_refresh_failed"


@dataclass(frozen=True)
class RefreshPolicy:
    fetch: saml_metadata.FetchPolicy = field(default_factory=saml_metadata.FetchPolicy)
    #: seconds between two fetches (a document may ask for less)
    refresh_seconds: float = saml_metadata.DEFAULT_REFRESH_SECONDS
    #: first delay after a failure, doubling up to ``refresh_seconds``
    retry_seconds: float = 300.0

    @property
    def lease(self) -> timedelta:
        """How long a claim holds: longer than any fetch may take."""
        return timedelta(seconds=max(60.0, 3 * self.fetch.timeout))


@dataclass(frozen=True)
class Outcome:
    """What one refresh did: ``refreshed``, ``refused`` (a document was fetched and
    rejected), ``failed`` (none could be fetched), ``busy`` (another refresher has it)."""

    partner: str
    status: str
    detail: str | None = None


def due(session: Session, now: datetime | None = None) -> list[int]:
    """The ids of the SPs fetched from a URL whose next fetch has come."""
    when = now or utcnow()
    return list(
        session.scalars(
            select(SamlServiceProvider.id)
            .where(
                SamlServiceProvider.metadata_url.is_not(None),
                (SamlServiceProvider.metadata_next_fetch_at.is_(None))
                | (SamlServiceProvider.metadata_next_fetch_at <= when),
            )
            .order_by(SamlServiceProvider.metadata_next_fetch_at, SamlServiceProvider.id)
        )
    )


def _claim(
    session: Session, row: SamlServiceProvider, policy: RefreshPolicy, now: datetime
) -> datetime | None:
    """Take ``row`` (committed): the lease's end, or None when another refresher has it."""
    seen = row.metadata_next_fetch_at
    lease_end = now + policy.lease
    same = (
        SamlServiceProvider.metadata_next_fetch_at.is_(None)
        if seen is None
        else SamlServiceProvider.metadata_next_fetch_at == seen
    )
    taken = session.execute(
        update(SamlServiceProvider)
        .where(SamlServiceProvider.id == row.id, same)
        .values(metadata_next_fetch_at=lease_end)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return lease_end if rows_affected(taken) == 1 else None


def refresh(
    sessions: Callable[[], Session],
    sp_id: int,
    policy: RefreshPolicy,
    *,
    force: bool = False,
    actor: str | None = None,
) -> Outcome | None:
    """Fetch and apply the metadata of SP ``sp_id`` if it is due (or ``force``); None when
    it is not due or has no URL."""
    session = sessions()
    try:
        row = session.get(SamlServiceProvider, sp_id)
        if row is None or row.metadata_url is None:
            return None
        name, url, now = row.partner.name, row.metadata_url, utcnow()
        due_at = row.metadata_next_fetch_at
        if not force and due_at is not None and due_at > now:
            return None
        lease_end = _claim(session, row, policy, now)
        if lease_end is None:
            return Outcome(name, "busy")
        try:
            document: bytes | None = saml_metadata.fetch(url, policy.fetch)
            problem = None
        except DirectoryError as exc:
            document, problem = None, str(exc)
        session.expire_all()
        row = session.get(SamlServiceProvider, sp_id)
        if row is None or row.metadata_url != url or row.metadata_next_fetch_at != lease_end:
            session.rollback()
            return Outcome(name, "busy")  # edited, or taken over after the lease
        outcome = _settle(session, row, document, problem, policy, actor)
        session.commit()
        return outcome
    finally:
        session.close()


def _settle(
    session: Session,
    row: SamlServiceProvider,
    document: bytes | None,
    problem: str | None,
    policy: RefreshPolicy,
    actor: str | None,
) -> Outcome:
    name, now = row.partner.name, utcnow()
    if document is not None:
        try:
            return _apply(session, row, document, policy, actor, now)
        except DirectoryError as exc:
            problem = str(exc)
    assert problem is not None
    failures = row.metadata_failures = (row.metadata_failures or 0) + 1
    delay = min(policy.retry_seconds * 2 ** (failures - 1), policy.refresh_seconds)
    row.metadata_error = problem
    row.metadata_next_fetch_at = now + timedelta(seconds=delay)
    status = "failed" if document is None else "refused"
    audit.record(
        session,
        FAILED,
        actor=actor,
        target=name,
        data={"url": row.metadata_url, "status": status, "error": problem, "failures": failures},
    )
    log.warning(
        "métadonnées SAML de %s non rafraîchies (%s, échec %d, prochain essai dans %d s) : %s",
        name,
        status,
        failures,
        delay,
        problem,
    )
    return Outcome(name, status, problem)


def _apply(
    session: Session,
    row: SamlServiceProvider,
    document: bytes,
    policy: RefreshPolicy,
    actor: str | None,
    now: datetime,
) -> Outcome:
    """Check ``document`` against the current metadata, then import it (or raise)."""
    fresh = saml_metadata.read(document, signing_pem=row.metadata_signing_pem or (), now=now)
    if fresh.entity_id != row.entity_id:
        raise DirectoryError(
            f"l'entityID a changé ({row.entity_id} → {fresh.entity_id}) : rafraîchissement "
            "refusé (importez-le avec « idp partner edit --saml-metadata »)"
        )
    current = parse_sp_metadata(row.metadata_xml.encode("utf-8"))
    old_keys, new_keys = (
        saml_metadata.key_fingerprints(current),
        saml_metadata.key_fingerprints(fresh),
    )
    if old_keys and not old_keys & new_keys:
        raise DirectoryError(
            "le document retire toutes les clés de signature et de chiffrement en place : "
            "rafraîchissement refusé"
        )
    old_acs = {e.location for e in current.assertion_consumer_services}
    if not old_acs & {e.location for e in fresh.assertion_consumer_services}:
        raise DirectoryError(
            "le document retire tous les AssertionConsumerService en place : "
            "rafraîchissement refusé"
        )
    changed = document.decode("utf-8") != row.metadata_xml
    saml_metadata.imported(
        row, document, url=row.metadata_url, refresh_seconds=policy.refresh_seconds, now=now
    )
    data = {
        "url": row.metadata_url,
        "changed": changed,
        "keys_added": sorted(new_keys - old_keys),
        "keys_removed": sorted(old_keys - new_keys),
        "acs": [a["url"] for a in row.acs],
        "next_fetch_at": row.metadata_next_fetch_at.isoformat()
        if row.metadata_next_fetch_at
        else None,
    }
    audit.record(session, REFRESHED, actor=actor, target=row.partner.name, data=data)
    log.info("métadonnées SAML de %s rafraîchies (modifiées : %s)", row.partner.name, changed)
    return Outcome(row.partner.name, "refreshed", "modifiées" if changed else "inchangées")


def refresh_due(
    sessions: Callable[[], Session], policy: RefreshPolicy, *, actor: str | None = None
) -> list[Outcome]:
    """One round: refresh every due SP (each claimed on its own)."""
    with sessions() as session:
        ids = due(session)
    outcomes = []
    for sp_id in ids:
        outcome = refresh(sessions, sp_id, policy, actor=actor)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def refresh_partner(
    sessions: Callable[[], Session],
    name: str,
    policy: RefreshPolicy,
    *,
    actor: str | None = None,
) -> Outcome:
    """Refresh partner ``name``'s metadata now, whatever its schedule."""
    from partners.services import get_partner

    with sessions() as session:
        partner = get_partner(session, name)
        if partner.saml is None or partner.saml.metadata_url is None:
            raise DirectoryError(
                f"{partner.name} n'a pas de métadonnées SAML à une URL "
                "(« idp partner edit --saml-metadata URL »)"
            )
        sp_id = partner.saml.id
    outcome = refresh(sessions, sp_id, policy, force=True, actor=actor)
    assert outcome is not None
    return outcome
