"""What ``rcd_store`` needs to keep a secret at rest without knowing the master key.

The directory never imports the key code: the application passes a :class:`Sealer`
(AES-GCM under the master key, made by the application) to the functions that store a
secret (the audit chain key, outbox bodies).
"""

from __future__ import annotations

from typing import Protocol


class Sealer(Protocol):
    """Authenticated encryption bound to a context (the AEAD associated data)."""

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """An opaque blob that opens only with the same key and ``context``."""
        ...

    def open(self, blob: bytes, *, context: bytes) -> bytes:
        """The plaintext; raises if the blob was altered, moved to another context, or
        sealed under another key."""
        ...
