"""A DSN concentrator's machine login acts for its clients only within its mandates:
the mandate's services, establishments and dates (clock injected into the rules)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from idp.tokens.signing import ensure_keys
from rcd_store import services
from rcd_store.errors import DirectoryError
from rcd_store.mandates import delegation, lifecycle, rules
from tests import factories as f
from tests.mandates.support import T0, terms, world


def _login(app: Any, service: str = "DSN") -> Any:
    xml = (
        f"<identifiants><siret>{f.SIRET_FIRM}</siret><nom>LEFEVRE</nom><prenom>claire</prenom>"
        f"<motdepasse>{f.PASSWORD}</motdepasse><service>{service}</service></identifiants>"
    )
    return app.test_client().post(
        "/authentifier/1.0/", data=xml.encode(), content_type="application/xml"
    )


def _rights(app: Any, token: str) -> set[tuple[str, str]]:
    """The habilitations of the token, as the DSN verifier endpoint reads them."""
    checked = app.test_client().get(
        "/authentifier/1.0/verifier", headers={"Authorization": f"DSNLogin jeton={token}"}
    )
    assert checked.status_code == 200, checked.json
    return {(h["service"], h["siret"]) for h in checked.json["habilitations"]}


@pytest.fixture
def concentrator(app: Any, session: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    ensure_keys(app)
    moments = [T0]
    monkeypatch.setattr(rules, "clock", lambda: moments[-1])
    w = world(session)
    mandate = delegation.grant(
        session,
        actor=w.client_admin.id,
        company_id=w.client_id,
        firm_siren=f.SIRET_FIRM[:9],
        terms=terms(kind="concentrateur", establishments=[f.SIRET_A]),
    )
    delegation.habilitate(
        session,
        actor=w.firm_admin.id,
        company_id=w.firm_id,
        mandate_id=mandate.id,
        declarant_id=w.accountant.id,
        siret=f.SIRET_A,
        service_code="DSN",
    )
    session.commit()
    return w, mandate, moments


def test_the_token_carries_the_clients_establishment_within_the_mandate(
    app: Any, session: Any, concentrator: Any
) -> None:
    w, _mandate, _ = concentrator
    response = _login(app)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _rights(app, response.get_data(as_text=True)) == {("DSN", f.SIRET_A)}
    assert _login(app, "ATMP").status_code == 401  # a service outside the mandate
    for siret, code in ((f.SIRET_A2, "DSN"), (f.SIRET_A, "ATMP")):  # nor by the CLI path
        with pytest.raises(DirectoryError, match="mandat"):
            services.grant_habilitation(
                session, declarant_id=w.accountant.id, siret=siret, service_code=code
            )


def test_after_the_end_date_no_token_even_before_the_sweep(
    app: Any, session: Any, concentrator: Any
) -> None:
    _w, mandate, moments = concentrator
    moments.append(mandate.ends_at - timedelta(seconds=1))
    assert _login(app).status_code == 200
    moments.append(mandate.ends_at)
    response = _login(app)
    assert response.status_code == 401
    assert 'error="service"' in response.headers["WWW-Authenticate"]
    assert lifecycle.sweep(session) == 1
    session.commit()
    assert _login(app).status_code == 401


def test_ending_the_mandate_stops_the_next_login(app: Any, session: Any, concentrator: Any) -> None:
    w, mandate, _ = concentrator
    assert _login(app).status_code == 200
    delegation.end(session, actor=w.client_admin.id, company_id=w.client_id, mandate_id=mandate.id)
    session.commit()
    assert _login(app).status_code == 401
