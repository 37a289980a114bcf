"""The production sender: SMTP (smtplib), with STARTTLS and authentication.

Settings: ``IDP_SMTP_HOST``, ``IDP_SMTP_PORT`` (587), ``IDP_SMTP_STARTTLS`` (on, but for
a server on the loopback address), ``IDP_SMTP_CA_FILE`` (certificates to trust beyond
the system's), ``IDP_SMTP_USERNAME``, ``IDP_SMTP_PASSWORD``, ``IDP_SMTP_FROM``,
``IDP_SMTP_TIMEOUT`` (seconds for connecting and for each reply) and
``IDP_LETTERS_TO`` (the print house; see :mod:`idp.outbox.settings`). A password is
never sent in clear: authentication without STARTTLS is refused at start-up.

One message, one SMTP transaction. The point of no return is the end of the DATA
content: the sender calls ``handover()`` (the deliverer commits that the message is
being handed over) just before sending it. Before that point any failure means the
server has no message (:class:`~rcd_store.outbox.SendError`, retried; a 5xx refusal is
:class:`~rcd_store.outbox.Rejected`); after it, a refusal reply still means no message,
but a lost connection or a timeout leaves the server's acceptance unknown
(:class:`~rcd_store.outbox.InDoubt`: never sent again, see :mod:`rcd_store.outbox`).
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from idp.config import ConfigError
from idp.outbox.mime import Letterhead, email_message, letter_for_print, valid_address
from rcd_store.outbox import InDoubt, Message, Rejected, SendError

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    starttls: bool
    username: str
    password: str
    timeout: float
    ca_file: str | None
    letters_to: str | None


def smtp_settings(config: Mapping[str, Any]) -> SmtpSettings:
    """The SMTP settings, checked (:class:`ConfigError` with the reason)."""
    host = str(config.get("SMTP_HOST") or "").strip()
    if not host:
        raise ConfigError(
            "IDP_SMTP_HOST est obligatoire pour envoyer par SMTP (le défaut hors SQLite "
            "embarquée) ; sinon IDP_OUTBOX_SENDER=file ou console"
        )
    starttls = config.get("SMTP_STARTTLS")
    starttls = host not in LOOPBACK if starttls is None else bool(starttls)
    username = str(config.get("SMTP_USERNAME") or "")
    if username and not starttls:
        raise ConfigError("IDP_SMTP_USERNAME exige IDP_SMTP_STARTTLS (mot de passe en clair)")
    letters_to = str(config.get("LETTERS_TO") or "").strip() or None
    if letters_to is not None and not valid_address(letters_to):
        raise ConfigError(f"IDP_LETTERS_TO n'est pas une adresse de courriel : {letters_to!r}")
    return SmtpSettings(
        host=host,
        port=int(config["SMTP_PORT"]),
        starttls=starttls,
        username=username,
        password=str(config.get("SMTP_PASSWORD") or ""),
        timeout=float(config["SMTP_TIMEOUT"]) or 30.0,
        ca_file=str(config.get("SMTP_CA_FILE") or "") or None,
        letters_to=letters_to,
    )


def _refused(stage: str, code: int, reply: bytes) -> SendError:
    text = f"{stage} refusé par le serveur SMTP : {code} {reply.decode(errors='replace')}"
    return Rejected(text) if code >= 500 else SendError(text)


def _dot_stuffed(data: bytes) -> bytes:
    """DATA content (RFC 5321 4.5.2): leading dots doubled, ended by CRLF.CRLF."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpSender:
    """Sends each message in one SMTP transaction (see the module's docstring)."""

    def __init__(self, settings: SmtpSettings, letterhead: Letterhead) -> None:
        self.settings = settings
        self.letterhead = letterhead

    def mail(self, message: Message) -> tuple[str, EmailMessage]:
        """(envelope recipient, message) of ``message``; a letter goes to the print house."""
        if message.channel == "letter":
            if self.settings.letters_to is None:
                raise Rejected("aucune adresse d'imprimeur (IDP_LETTERS_TO) pour les courriers")
            print_house = self.settings.letters_to
            return print_house, letter_for_print(message, self.letterhead, print_house)
        return message.recipient, email_message(message, self.letterhead)

    def _open(self) -> smtplib.SMTP:
        settings = self.settings
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=settings.ca_file))
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Message, handover: Callable[[], None]) -> None:
        recipient, mail = self.mail(message)
        data = _dot_stuffed(mail.as_bytes())
        try:
            smtp = self._open()
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"authentification SMTP refusée : {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"serveur SMTP injoignable : {exc}") from None
        try:
            self._transaction(smtp, recipient, data, handover)
        finally:
            _close(smtp)

    def _transaction(
        self, smtp: smtplib.SMTP, recipient: str, data: bytes, handover: Callable[[], None]
    ) -> None:
        try:
            _expect("MAIL FROM", smtp.mail(self.letterhead.mail_from), 250)
            _expect("RCPT TO", smtp.rcpt(recipient), 250, 251)
            _expect("DATA", smtp.docmd("DATA"), 354)
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"échange SMTP interrompu : {exc}") from None
        handover()  # from here the server may hold the message
        try:
            smtp.send(data)
            reply = smtp.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            raise InDoubt(f"réponse du serveur SMTP perdue après l'envoi : {exc}") from None
        _expect("message", reply, 250)


def _expect(stage: str, reply: tuple[int, bytes], *codes: int) -> None:
    if reply[0] not in codes:
        raise _refused(stage, *reply)


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT, then close; a failure here changes nothing (the transaction is over)."""
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException) as exc:
        log.info("fermeture de la session SMTP : %s", exc)
        smtp.close()
