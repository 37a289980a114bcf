"""The bytes a sender hands over: an email as an RFC 5322 message, a letter as a PDF
(and, for the print house, the PDF attached to an email).

The Message-ID of every email derives from the outbox message's idempotency key, so
a copy handed over twice (a crash between the server's acceptance and our record
of it, see :mod:`rcd_store.outbox`) carries the same Message-ID and a receiving
system can recognise it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from idp.i18n import _
from rcd_store.db import utcnow
from rcd_store.outbox import Message, Rejected


@dataclass(frozen=True)
class Letterhead:
    """Who the messages come from: the email sender (``IDP_SMTP_FROM``) and the
    letters' sender block (``IDP_LETTER_SENDER``, lines separated by ``\\n``)."""

    mail_from: str
    letter_sender: tuple[str, ...]

    @property
    def domain(self) -> str:
        return self.mail_from.rpartition("@")[2].strip("> ") or "localhost"


def message_id(message: Message, letterhead: Letterhead) -> str:
    """``<outbox.KEY@domain>``: the same for every copy of one outbox message."""
    key = message.idempotency_key or f"id{message.id}"
    return f"<outbox.{key}@{letterhead.domain}>"


def _when(message: Message) -> datetime:
    return message.created_at or utcnow()


def address_lines(recipient: str) -> list[str]:
    """A letter's recipient block: one line per line, blank lines dropped."""
    return [line.strip() for line in recipient.splitlines() if line.strip()]


def letter_pdf(message: Message, letterhead: Letterhead) -> bytes:
    from idp.outbox.letters import render_letter  # reportlab loaded by the first letter only

    return render_letter(
        sender=letterhead.letter_sender,
        recipient=address_lines(message.recipient),
        subject=message.subject,
        body=message.body,
        when=_when(message),
    )


def _envelope(message: Message, letterhead: Letterhead, to: str, subject: str) -> EmailMessage:
    """The headers; a recipient that is not one plain address is refused for good (no
    header injection: the message is given up, never sent elsewhere)."""
    if not valid_address(to):
        raise Rejected(f"adresse de courriel invalide : {to!r}")
    mail = EmailMessage(policy=SMTP)  # CRLF line ends, as SMTP's DATA wants them
    mail["From"] = letterhead.mail_from
    mail["To"] = to
    mail["Subject"] = " ".join(subject.split())  # one line, whatever it was given
    mail["Date"] = format_datetime(_when(message))
    mail["Message-ID"] = message_id(message, letterhead)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no autoreply loops
    return mail


def email_message(message: Message, letterhead: Letterhead) -> EmailMessage:
    """An email message of the outbox as sent to its recipient (text, UTF-8)."""
    mail = _envelope(message, letterhead, message.recipient, message.subject)
    mail.set_content(message.body, charset="utf-8")
    return mail


def letter_for_print(message: Message, letterhead: Letterhead, print_house: str) -> EmailMessage:
    """A letter of the outbox as an email to the print house, the PDF attached."""
    lines = address_lines(message.recipient)
    mail = _envelope(
        message,
        letterhead,
        print_house,
        _("Courrier à imprimer : {subject}", subject=message.subject),
    )
    mail.set_content(
        _(
            "Courrier n° {id} à imprimer et à poster (PDF joint).\nDestinataire :\n{address}\n",
            id=message.id,
            address="\n".join(lines),
        ),
        charset="utf-8",
    )
    mail.add_attachment(
        letter_pdf(message, letterhead),
        maintype="application",
        subtype="pdf",
        filename=f"courrier-{message.id}.pdf",
    )
    return mail


def valid_address(text: str) -> bool:
    """Whether ``text`` is one plain address (``local@domain``, no display name)."""
    try:
        address = Address(addr_spec=text)
    except (ValueError, IndexError):
        return False
    return bool(address.username and address.domain) and "\n" not in text
