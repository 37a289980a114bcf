"""``POST /events/poll``: a partner pulls its Security Event Tokens (RFC 8936), whether
or not it registered a push receiver.

The caller is a partner's OAuth client with an access token of ours for the API
(``client_credentials``, scope ``events.read``, audience ``<issuer>/api``): it gets its
own partner's events only. The body is a JSON object: ``ack`` (the ``jti`` of SETs it
processed: settled, never returned again), ``setErrs`` (``{jti: {err, description}}``:
refused, recorded), ``maxEvents`` (0 to 100, default 100: 0 only acknowledges) and
``returnImmediately`` (accepted; the answer is always immediate). The answer:
``{"sets": {jti: SET}, "moreAvailable": bool}``, the members oldest first (written in
that order, not sorted). A bad body gets 400 with
``{"err": "invalid_request", "description": ...}`` and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import select, update

from idp.api.bearer import caller
from idp.api.problems import ApiProblem, problem
from idp.events.emit import receiver_key
from idp.events.models import SET_CHANNEL, SecurityEventRow
from idp.events.push import signed
from idp.stores import db
from idp.web import csrf
from idp.web.answers import no_store
from rcd_store.db import utcnow

bp = Blueprint("events", __name__)

SCOPE = "events.read"
MAX_EVENTS = 100
MAX_ACKS = 1000


class BadPoll(ValueError):
    """The body is not a poll request we read."""


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ACKS:
        raise BadPoll(f"{what} : liste d'au plus {MAX_ACKS} identifiants attendue")
    if not all(isinstance(item, str) and 0 < len(item) <= 64 for item in value):
        raise BadPoll(f"{what} : identifiants de SET attendus")
    return value


def read_poll(body: Any) -> tuple[list[str], dict[str, str], int]:
    """(acknowledged jtis, refused jti -> error, how many SETs to return), or
    :class:`BadPoll`."""
    if not isinstance(body, dict):
        raise BadPoll("objet JSON attendu")
    unknown = set(body) - {"ack", "setErrs", "maxEvents", "returnImmediately"}
    if unknown:
        raise BadPoll(f"membre inconnu : {min(unknown)}")
    acks = _strings(body.get("ack", []), "ack")
    errors = body.get("setErrs", {})
    if not isinstance(errors, dict) or not all(isinstance(v, dict) for v in errors.values()):
        raise BadPoll("setErrs : objet {jti: {err, description}} attendu")
    refused = {
        jti: f"{value.get('err', '?')}: {value.get('description', '')}"[:500]
        for jti, value in zip(_strings(list(errors), "setErrs"), errors.values(), strict=True)
    }
    wanted = body.get("maxEvents", MAX_EVENTS)
    if type(wanted) is not int or not 0 <= wanted <= MAX_EVENTS:
        raise BadPoll(f"maxEvents : entier de 0 à {MAX_EVENTS} attendu")
    if not isinstance(body.get("returnImmediately", True), bool):
        raise BadPoll("returnImmediately : booléen attendu")
    return acks, refused, wanted


def _settle(receiver: str, jtis: list[str], outcome: str, error: str | None = None) -> None:
    if jtis:
        db.session().execute(
            update(SecurityEventRow)
            .where(
                SecurityEventRow.receiver == receiver,
                SecurityEventRow.jti.in_(jtis),
                SecurityEventRow.settled_at.is_(None),
            )
            .values(settled_at=utcnow(), outcome=outcome, last_error=error)
            .execution_options(synchronize_session=False)
        )


@bp.post("/events/poll")
def poll() -> Response:
    """RFC 8936 poll: acknowledge, then return the partner's next SETs in order."""
    try:
        who = caller(SCOPE)
    except ApiProblem as exc:
        return problem(exc.status, exc.detail, exc.headers)
    try:
        acks, refused, wanted = read_poll(request.get_json(silent=True))
    except BadPoll as exc:
        answer = jsonify({"err": "invalid_request", "description": str(exc)})
        return no_store(answer), 400  # type: ignore[return-value]
    receiver = receiver_key(SET_CHANNEL, who.client.partner_id)
    _settle(receiver, acks, "polled")
    for jti, error in refused.items():
        _settle(receiver, [jti], "refused", error)
    session = db.session()
    rows = session.scalars(
        select(SecurityEventRow)
        .where(SecurityEventRow.receiver == receiver, SecurityEventRow.settled_at.is_(None))
        .order_by(SecurityEventRow.seq)
        .limit(wanted + 1)
    ).all()
    session.commit()
    now = utcnow()
    sets = {row.jti: signed(current_app, row, now) for row in rows[:wanted]}
    body = json.dumps({"sets": sets, "moreAvailable": len(rows) > wanted})  # sets in order
    return no_store(Response(body, mimetype="application/json"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    csrf.exempt(app, bp.name)
