"""Which sender delivers the outbox, from the configuration.

``IDP_OUTBOX_SENDER``: ``file`` (the default with the embedded SQLite: files in
``<instance>/outbox/``), ``console`` (printed on standard output) or ``smtp`` (the
default with any other database; see :mod:`idp.outbox.smtp` for its settings).

Letters with ``smtp``: when ``IDP_LETTERS_TO`` names the print house's address, each
letter goes there as an email with the PDF attached; without it, letters are written
as PDF files in ``<instance>/outbox/`` (to print and post by hand) while emails go by
SMTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from idp.config import ConfigError
from idp.outbox.mime import Letterhead, valid_address
from idp.outbox.senders import ConsoleSender, FileSender
from idp.outbox.smtp import SmtpSender, smtp_settings
from rcd_store.outbox import Message, RetryPolicy, Sender

SENDERS = ("file", "console", "smtp")


def outbox_folder(config: Mapping[str, Any]) -> Path:
    """``<instance>/outbox``: where the file sender writes."""
    return Path(config["INSTANCE_PATH"]) / "outbox"


def letterhead(config: Mapping[str, Any]) -> Letterhead:
    mail_from = str(config["SMTP_FROM"]).strip()
    if not valid_address(mail_from):
        raise ConfigError(f"IDP_SMTP_FROM n'est pas une adresse de courriel : {mail_from!r}")
    lines = str(config["LETTER_SENDER"]).replace("\\n", "\n").splitlines()
    return Letterhead(mail_from, tuple(line.strip() for line in lines if line.strip()))


def sender_name(config: Mapping[str, Any]) -> str:
    name = str(config.get("OUTBOX_SENDER") or "").strip().lower()
    if not name:
        return "file" if config["EMBEDDED_DATABASE"] else "smtp"
    if name not in SENDERS:
        raise ConfigError(f"IDP_OUTBOX_SENDER doit être l'un de {', '.join(SENDERS)} : {name!r}")
    return name


class SplitSender:
    """Emails by one sender, letters by another."""

    def __init__(self, emails: Sender, letters: Sender) -> None:
        self.emails = emails
        self.letters = letters

    def send(self, message: Message, handover: Callable[[], None]) -> None:
        chosen = self.letters if message.channel == "letter" else self.emails
        chosen.send(message, handover)


def build_sender(config: Mapping[str, Any], *, console: TextIO | None = None) -> Sender:
    """The sender ``IDP_OUTBOX_SENDER`` names (:class:`ConfigError` if it cannot work);
    ``console``: where the console sender prints (standard output by default)."""
    name = sender_name(config)
    head = letterhead(config)
    files = FileSender(outbox_folder(config), head)
    if name == "file":
        return files
    if name == "console":
        return ConsoleSender(head, console)
    smtp = SmtpSender(smtp_settings(config), head)
    return smtp if smtp.settings.letters_to else SplitSender(smtp, files)


def retry_policy(config: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(
        first_delay=float(config["OUTBOX_RETRY_SECONDS"]),
        max_attempts=int(config["OUTBOX_MAX_ATTEMPTS"]),
        lease=float(config["OUTBOX_LEASE_SECONDS"]),
    )
