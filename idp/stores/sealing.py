"""The :class:`rcd_store.sealing.Sealer` of the application: AES-256-GCM under the
master key (:mod:`keys.crypto`), so the directory keeps secrets it cannot read alone."""

from __future__ import annotations

from flask import Flask, current_app

from keys.crypto import MasterKey

_LABEL = b"interops-idp/sealed/v1:"


class MasterKeySealer:
    """Seals under ``IDP_MASTER_KEY``; the context is bound as associated data, so a blob
    copied to another row or purpose does not open (raises ``KeyDecryptionError``)."""

    def __init__(self, master_key: MasterKey) -> None:
        self._master_key = master_key

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        return self._master_key.encrypt(plaintext, associated_data=_LABEL + context)

    def open(self, blob: bytes, *, context: bytes) -> bytes:
        return self._master_key.decrypt(blob, associated_data=_LABEL + context)


EXTENSION = "idp.sealer"


def app_sealer(app: Flask | None = None) -> MasterKeySealer:
    """The app's sealer (set up with its master key by ``idp.tokens.signing.init_app``)."""
    return (app or current_app).extensions[EXTENSION]  # type: ignore[no-any-return]
