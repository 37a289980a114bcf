"""The development senders: files in the instance folder, or the console.

:class:`FileSender` (the default with the embedded SQLite: development, demo, tests)
writes each message into ``<instance>/outbox/``: ``<id>-<kind>.eml`` for an email (RFC
5322, as it would go out) and ``<id>-<kind>.pdf`` for a letter, each file 0600 in a 0700
folder (they hold links and codes in clear). A file is written under a temporary name
and renamed into place, so a reader never sees half a message, and the name depends on
the message only: a message handed over twice leaves one file.

:class:`ConsoleSender` prints each message (a letter as its text) on a stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from idp.i18n import _
from idp.outbox.mime import Letterhead, email_message, letter_pdf
from rcd_store.outbox import Message

#: the headers the console shows
_SHOWN = ("From", "To", "Subject", "Date", "Message-ID")


def _nothing() -> None:
    return None


def file_name(message: Message) -> str:
    """``<id>-<kind>.eml`` or ``<id>-<kind>.pdf``."""
    suffix = "pdf" if message.channel == "letter" else "eml"
    return f"{message.id}-{message.kind}.{suffix}"


def private_folder(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path`` (mode 0600), atomically: a temporary file renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class FileSender:
    """Writes each message into a private folder (see the module's docstring)."""

    def __init__(self, folder: Path, letterhead: Letterhead) -> None:
        self.folder = folder
        self.letterhead = letterhead

    def render(self, message: Message) -> bytes:
        if message.channel == "letter":
            return letter_pdf(message, self.letterhead)
        return bytes(email_message(message, self.letterhead))

    def send(self, message: Message, handover: Callable[[], None] = _nothing) -> None:
        data = self.render(message)
        path = private_folder(self.folder) / file_name(message)
        handover()
        write_private(path, data)


class ConsoleSender:
    """Prints each message on ``stream`` (standard output by default)."""

    def __init__(self, letterhead: Letterhead, stream: TextIO | None = None) -> None:
        self.letterhead = letterhead
        self.stream = stream

    def send(self, message: Message, handover: Callable[[], None] = _nothing) -> None:
        if message.channel == "letter":
            subject = _("Objet : {subject}", subject=message.subject)
            text = "\n".join(
                [f"--- {message.id}-{message.kind}.pdf", message.recipient, "", subject, ""]
                + [message.body]
            )
        else:
            mail = email_message(message, self.letterhead)  # checked as it would go out
            headers = [f"{name}: {mail[name]}" for name in _SHOWN]
            text = "\n".join([*headers, "", message.body])  # readable: headers decoded
        handover()
        stream = self.stream or sys.stdout
        stream.write(text.rstrip("\n") + "\n\n")
        stream.flush()
