"""Home page and health check."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from idp import db

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    return render_template("home.html")


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database and, if configured, Redis answer; 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        db.session().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"erreur : {type(exc).__name__}"
    redis_client = current_app.extensions.get("idp.redis")
    if redis_client is not None:
        try:
            redis_client.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any client failure means "not healthy"
            checks["redis"] = f"erreur : {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "erreur", checks=checks), 200 if healthy else 503
