"""Letters as PDF (reportlab): French, A4, for a window envelope.

The first page carries the sender's block (top left, ``IDP_LETTER_SENDER``), the
recipient's name and address block where the envelope's window is (the message's
``recipient``, one line per line), the date and the subject; then the body, one
paragraph per line, on as many pages as it takes. Codes and links are set in a
monospace font (Courier) so that a reader copies them without confusing letters and
digits: any link (``http(s)://...``) and any code written as groups of four capitals or
digits joined by dashes (``7K3M-Q9ZD-...``, the enrolment codes' form).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    NextPageTemplate,
    PageTemplate,
    Paragraph,
    Spacer,
)

from idp.i18n import _

#: a link, or a code of groups of four (Crockford base32 letters and digits) joined by dashes
CODE = re.compile(r"https?://\S+|\b[0-9A-Z]{4}(?:-[0-9A-Z]{4})+\b")
MONOSPACE = "Courier-Bold"
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

_WIDTH, _HEIGHT = A4
_LEFT = 20 * mm
_WINDOW_LEFT = 110 * mm  # the window of a DL envelope, right-hand side (NF Z 10-011)
_BODY = ParagraphStyle("body", fontName="Helvetica", fontSize=11, leading=15, splitLongWords=1)
_BLOCK = ParagraphStyle("block", fontName="Helvetica", fontSize=11, leading=14)
_SUBJECT = ParagraphStyle("subject", parent=_BODY, fontName="Helvetica-Bold")


def french_date(when: datetime) -> str:
    """``3 décembre 2026``."""
    return f"{when.day} {MONTHS[when.month - 1]} {when.year}"


def marked_up(line: str) -> str:
    """One body line as reportlab paragraph markup: text escaped, codes and links in
    the monospace font."""
    parts: list[str] = []
    position = 0
    for match in CODE.finditer(line):
        parts.append(escape(line[position : match.start()]))
        parts.append(f'<font name="{MONOSPACE}">{escape(match.group(0))}</font>')
        position = match.end()
    parts.append(escape(line[position:]))
    return "".join(parts)


def _block(canvas: Canvas, lines: Sequence[str], x: float, top: float, width: float) -> None:
    """Lines drawn from ``top`` (distance from the page's top edge) downwards."""
    paragraph = Paragraph("<br/>".join(escape(line) for line in lines), _BLOCK)
    _, height = paragraph.wrap(width, _HEIGHT)
    paragraph.drawOn(canvas, x, _HEIGHT - top - height)


def render_letter(
    *, sender: Sequence[str], recipient: Sequence[str], subject: str, body: str, when: datetime
) -> bytes:
    """The letter as PDF bytes."""

    def first_page(canvas: Canvas, _doc: BaseDocTemplate) -> None:
        canvas.saveState()
        _block(canvas, sender, _LEFT, 20 * mm, 80 * mm)
        _block(canvas, recipient, _WINDOW_LEFT, 50 * mm, 85 * mm)
        _block(canvas, [_("Le {date}", date=french_date(when))], _WINDOW_LEFT, 88 * mm, 85 * mm)
        canvas.restoreState()

    buffer = io.BytesIO()
    document = BaseDocTemplate(
        buffer,
        pagesize=A4,
        title=subject,
        author=sender[0] if sender else "",
        lang="fr-FR",
        invariant=True,  # no clock or random id inside: the same letter, the same bytes
    )
    frame_width = _WIDTH - 2 * _LEFT
    document.addPageTemplates(
        [
            PageTemplate(
                "first",
                [Frame(_LEFT, 25 * mm, frame_width, _HEIGHT - 125 * mm, id="first")],
                onPage=first_page,
            ),
            PageTemplate("next", [Frame(_LEFT, 25 * mm, frame_width, _HEIGHT - 45 * mm)]),
        ]
    )
    story: list[object] = [
        NextPageTemplate("next"),
        Paragraph(escape(_("Objet : {subject}", subject=subject)), _SUBJECT),
        Spacer(0, 6 * mm),
    ]
    for line in body.splitlines():
        story.append(Paragraph(marked_up(line), _BODY) if line.strip() else Spacer(0, 4 * mm))
    document.build(story)
    return buffer.getvalue()
