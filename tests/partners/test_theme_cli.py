"""``idp partner add|edit --theme-*``: the widget theme set from the command line, shown by
``partner show``, audited; a bad value is refused with a clear error and changes nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from rcd_store.models import AuditEvent


def _shown(idp: Any) -> dict[str, Any]:
    result = idp("partner", "show", "MSA", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)  # type: ignore[no-any-return]


def _audited(session: Any, kind: str) -> list[dict[str, Any]]:
    session.expire_all()
    query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
    return [json.loads(event.data) for event in session.scalars(query)]


def test_theme_set_shown_and_audited(idp: Any, session: Any) -> None:
    added = idp(
        "partner", "add", "--name", "MSA", "--theme-primary", "#1E5B2A",
        "--theme-label-fr", "Connexion MSA",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert _shown(idp)["theme"] == {"primary": "#1e5b2a", "label": {"fr": "Connexion MSA"}}
    assert _audited(session, "partner.added")[-1]["theme"]["primary"] == "#1e5b2a"
    edited = idp(
        "partner", "edit", "MSA", "--theme-text", "#FFFFFF", "--theme-label-en", "MSA sign-in",
        "--theme-logo", "https://cdn.msa.example/logo.svg",
    )  # fmt: skip
    assert edited.code == 0, edited.err
    assert _shown(idp)["theme"] == {
        "primary": "#1e5b2a",
        "text": "#ffffff",
        "logo_url": "https://cdn.msa.example/logo.svg",
        "label": {"fr": "Connexion MSA", "en": "MSA sign-in"},
    }
    assert _audited(session, "partner.edited")[-1]["theme"]["label"]["en"] == "MSA sign-in"
    removed = idp("partner", "edit", "MSA", "--theme-logo", "", "--theme-label-fr", "")
    assert removed.code == 0, removed.err
    theme = _shown(idp)["theme"]
    assert "logo_url" not in theme and theme["label"] == {"en": "MSA sign-in"}


def test_a_bad_theme_value_is_refused_and_changes_nothing(idp: Any, session: Any) -> None:
    assert idp("partner", "add", "--name", "MSA", "--theme-primary", "#1e5b2a").code == 0
    before = _shown(idp)
    edits = len(_audited(session, "partner.edited"))
    for option, value, message in [
        ("--theme-primary", "blue", "couleur principale invalide"),
        ("--theme-text", "#2a6b3a", "contraste insuffisant"),
        ("--theme-logo", "http://cdn.msa.example/logo.png", "https obligatoire"),
        ("--theme-label-fr", "<img src=x onerror=alert(1)>", "sans balise"),
    ]:
        refused = idp(
            "partner", "edit", "MSA", "--landing-url", "https://msa.example/", option, value
        )
        assert refused.code != 0 and message in refused.err, (option, refused.err)
        assert _shown(idp) == before
    assert len(_audited(session, "partner.edited")) == edits
    refused = idp("partner", "add", "--name", "CNAV", "--theme-text", "#000092")
    assert refused.code != 0 and "contraste insuffisant" in refused.err
    assert "CNAV" not in idp("partner", "list").out
