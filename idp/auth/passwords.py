"""The app's password service, built once from the configuration."""

from __future__ import annotations

from flask import Flask, current_app

from rcd_store.passwords import HashParameters, PasswordService


def init_app(app: Flask) -> PasswordService:
    service = PasswordService(
        HashParameters(
            time_cost=int(app.config["ARGON2_TIME_COST"]),
            memory_kib=int(app.config["ARGON2_MEMORY_KIB"]),
        )
    )
    app.extensions["idp.passwords"] = service
    return service


def passwords(app: Flask | None = None) -> PasswordService:
    return (app or current_app).extensions["idp.passwords"]  # type: ignore[no-any-return]
