"""Events emitted in the transaction of the change they tell, to the receivers entitled
to them, and to nobody else.

Directory changes are seen in one place: the audit events their services record
(:func:`rcd_store.audit.record`, flushed with the change). After each flush of the app's
sessions, every new audit event of a kind in :data:`KINDS` becomes one outbox row per
partner that shares a service with the declarant: for a habilitation, the partners
receiving that service; otherwise the partners receiving a service on which the
declarant holds or held a habilitation. A session that ends (:func:`session_ended`,
called by :func:`idp.sessions.sso.end_session`) adds the same "session ended" SET, and a
logout token for each OpenID Connect client of the session with a back-channel logout
URI. Rows are numbered per receiver under a lock on the receiver's stream row.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any, cast

from flask import Flask
from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from idp.events.models import LOGOUT_CHANNEL, SET_CHANNEL, EventStream, SecurityEventRow
from partners.models import OAuthClient, Partner, PartnerService
from rcd_store.db import upsert, utcnow
from rcd_store.models import AuditEvent, Habilitation, Service
from token_suite import events as set_tokens

#: audit kind -> event kind
KINDS = {
    "declarant.created": "declarant-created",
    "declarant.identity_changed": "identity-changed",
    "habilitation.granted": "habilitation-granted",
    "habilitation.revoked": "habilitation-revoked",
    "admin.declarant_suspended": "account-suspended",
}
#: what of an audit event's data a partner receives: a habilitation's service, SIRET
#: and role; for an identity change, the names of the changed claims (never their values)
_SHARED_DATA = ("service", "siret", "role")
_IDENTITY_DATA = ("fields",)


def receiver_key(channel: str, name: object) -> str:
    return f"{channel}:{name}"


def _partners_of_service(session: Session, code: str) -> list[tuple[int, str]]:
    stmt = (
        select(Partner.id, Partner.identifier)
        .join(PartnerService, PartnerService.partner_id == Partner.id)
        .join(Service, Service.id == PartnerService.service_id)
        .where(Service.code == code)
        .order_by(Partner.id)
    )
    return [(row[0], row[1]) for row in session.connection().execute(stmt)]


def sharing_partners(session: Session, declarant_id: str) -> list[tuple[int, str]]:
    """(id, identifier) of every partner receiving a service on which the declarant
    holds or held a habilitation: the only ones told about them."""
    services = select(Habilitation.service_id).where(Habilitation.declarant_id == declarant_id)
    stmt = (
        select(Partner.id, Partner.identifier)
        .join(PartnerService, PartnerService.partner_id == Partner.id)
        .where(PartnerService.service_id.in_(services))
        .distinct()
        .order_by(Partner.id)
    )
    return [(row[0], row[1]) for row in session.connection().execute(stmt)]


def _next_seqs(session: Session, receiver: str, count: int) -> range:
    """``count`` new sequence numbers of ``receiver``, its stream row locked until commit."""
    connection, stream = session.connection(), cast(Table, EventStream.__table__)
    connection.execute(
        upsert(session, stream).values(receiver=receiver, last_seq=0).on_conflict_do_nothing()
    )
    last: int = connection.execute(
        update(stream)
        .where(stream.c.receiver == receiver)
        .values(last_seq=stream.c.last_seq + count)
        .returning(stream.c.last_seq)
    ).scalar_one()
    return range(last - count + 1, last + 1)


def enqueue(
    session: Session,
    *,
    channel: str,
    receiver: str,
    partner_id: int,
    kind: str,
    subject: str,
    claims: dict[str, Any],
) -> None:
    """One outbox row for ``receiver`` (Core INSERT: safe inside a flush)."""
    (seq,) = _next_seqs(session, receiver_key(channel, receiver), 1)
    now = utcnow()
    session.connection().execute(
        insert(SecurityEventRow).values(
            receiver=receiver_key(channel, receiver),
            seq=seq,
            partner_id=partner_id,
            jti=secrets.token_urlsafe(24),
            kind=kind,
            subject=subject,
            claims=claims,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )


def set_claims(audience: str, kind: str, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A SET's claims but ``iss``, ``iat`` and ``jti`` (RFC 8417, RFC 9493 ``sub_id``)."""
    return {
        "aud": audience,
        "sub_id": {"format": "opaque", "id": subject},
        "events": {set_tokens.event_uri(kind): payload},
    }


def emit(
    session: Session,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    partners: Iterable[tuple[int, str]],
) -> None:
    """A SET of ``kind`` about ``subject`` for each of ``partners``."""
    for partner_id, identifier in partners:
        enqueue(
            session,
            channel=SET_CHANNEL,
            receiver=str(partner_id),
            partner_id=partner_id,
            kind=kind,
            subject=subject,
            claims=set_claims(identifier, kind, subject, payload),
        )


def _from_audit(session: Session, audit_event: AuditEvent) -> None:
    kind, subject = KINDS[audit_event.kind], audit_event.target
    if not subject:
        return
    data = json.loads(audit_event.data or "{}")
    if kind.startswith("habilitation-"):
        payload = {k: data[k] for k in _SHARED_DATA if k in data}
        code = data.get("service")
        receivers = _partners_of_service(session, code) if isinstance(code, str) else []
        emit(session, kind, subject, payload, receivers)
    else:
        shared = _IDENTITY_DATA if kind == "identity-changed" else ()
        payload = {k: data[k] for k in shared if k in data}
        emit(session, kind, subject, payload, sharing_partners(session, subject))


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    new = [o for o in session.new if isinstance(o, AuditEvent) and o.kind in KINDS]
    for audit_event in sorted(new, key=lambda e: (e.segment, e.seq)):
        _from_audit(session, audit_event)


def session_ended(session: Session, declarant_id: str, sid: str, participants: list[Any]) -> None:
    """The SETs "session ended" and a logout token for each OpenID Connect participant
    with a back-channel logout URI (OpenID Connect Back-Channel Logout 1.0, 2.4)."""
    emit(session, "session-ended", declarant_id, {}, sharing_partners(session, declarant_id))
    client_ids = sorted(
        {str(p.get("client_id")) for p in participants if p.get("protocol") == "oidc"}
    )
    if not client_ids:
        return
    clients = session.connection().execute(
        select(OAuthClient.client_id, OAuthClient.partner_id).where(
            OAuthClient.client_id.in_(client_ids), OAuthClient.backchannel_logout_uri.is_not(None)
        )
    )
    for client_id, partner_id in clients.all():
        claims = {
            "aud": client_id,
            "sub": declarant_id,
            "sid": sid,
            "events": {set_tokens.LOGOUT_EVENT: {}},
        }
        enqueue(
            session,
            channel=LOGOUT_CHANNEL,
            receiver=client_id,
            partner_id=partner_id,
            kind="logout",
            subject=declarant_id,
            claims=claims,
        )


def init_app(app: Flask, sessions: sessionmaker[Session]) -> None:
    """Watch the flushes of ``app``'s sessions (and of no other)."""
    if not event.contains(sessions, "after_flush", _after_flush):
        event.listen(sessions, "after_flush", _after_flush)
    app.extensions["idp.events"] = sessions
