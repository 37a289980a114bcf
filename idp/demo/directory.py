"""The demo directory loaded by ``idp serve --demo`` (idempotent).

Several companies and establishments, an accounting firm holding a mandate
from a client, an administrator, and declarants habilitated on several
services of several partners.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.passwords import passwords
from idp.demo.partner_site import PartnerSite, load_key, site_metadata, slug
from idp.stores.db import database
from partners.models import Partner
from partners.services import ClientSettings, PartnerSettings, add_partner, edit_partner
from rcd_store import services
from rcd_store.models import Company, Declarant, Establishment, Mandate, Service

DEMO_PASSWORD = "Démo-Interops-2026"

COMPANIES = (
    # (SIRET, name, representative)
    ("73282932000074", "Boulangerie Dupont SARL", "Élodie Dupont"),
    ("73282932000082", "Boulangerie Dupont SARL", None),
    ("44306184100013", "Transports Martin SAS", "Jean Martin"),
    ("44306184100021", "Transports Martin SAS", None),
    ("55208131700018", "Cabinet Lefèvre Expertise Comptable", "Claire Lefèvre"),
)

SERVICES = (
    # (code, name, partner, numeric id, {role: PAGM})
    (
        "DSN",
        "Déclaration sociale nominative",
        "URSSAF",
        98,
        {"DECLARANT": "DSN_DECLARANT", "CONSULTATION": "DSN_CONSULT"},
    ),
    ("ATMP", "Compte AT/MP", "Assurance Maladie", 41, {"DECLARANT": "ATMP_GESTION"}),
    (
        "DUCS",
        "Déclaration unifiée de cotisations sociales",
        "URSSAF",
        20,
        {"DECLARANT": "DUCS_DECLARANT"},
    ),
    (
        "RETRAITE",
        "Espace retraite complémentaire",
        "Agirc-Arrco",
        60,
        {"DECLARANT": "RC_DECLARANT", "CONSULTATION": "RC_CONSULT"},
    ),
)

DECLARANTS = (
    # (SIRET, last name, first name, email, admin)
    ("73282932000074", "Dupont", "Élodie", "elodie.dupont@boulangerie-dupont.example", True),
    ("44306184100013", "Martin", "Jean", "jean.martin@transports-martin.example", False),
    ("44306184100013", "Bernard", "Sophie", "sophie.bernard@transports-martin.example", True),
    ("55208131700018", "Lefèvre", "Claire", "claire.lefevre@cabinet-lefevre.example", False),
)

HABILITATIONS = (
    # (email, SIRET, service, role)
    ("elodie.dupont@boulangerie-dupont.example", "73282932000074", "DSN", "DECLARANT"),
    ("elodie.dupont@boulangerie-dupont.example", "73282932000074", "ATMP", "DECLARANT"),
    ("elodie.dupont@boulangerie-dupont.example", "73282932000082", "DSN", "DECLARANT"),
    ("elodie.dupont@boulangerie-dupont.example", "73282932000074", "RETRAITE", "CONSULTATION"),
    ("jean.martin@transports-martin.example", "44306184100013", "DSN", "DECLARANT"),
    ("jean.martin@transports-martin.example", "44306184100021", "DUCS", "DECLARANT"),
    ("sophie.bernard@transports-martin.example", "44306184100013", "ATMP", "DECLARANT"),
    ("claire.lefevre@cabinet-lefevre.example", "44306184100013", "DSN", "DECLARANT"),
    ("claire.lefevre@cabinet-lefevre.example", "44306184100021", "DSN", "DECLARANT"),
    ("claire.lefevre@cabinet-lefevre.example", "55208131700018", "DUCS", "DECLARANT"),
)

MANDATE = ("443061841", "552081317", ("DSN", "DUCS"))


@dataclass(frozen=True)
class DemoLogin:
    declarant_id: str
    siret: str
    last_name: str
    first_name: str
    email: str


def _ensure_companies(session: Session) -> None:
    for siret, name, representative in COMPANIES:
        if (
            session.scalars(select(Establishment.id).where(Establishment.siret == siret)).first()
            is None
        ):
            services.add_company(
                session, siret=siret, name=name, representative=representative, actor="demo"
            )


def _ensure_services(session: Session) -> None:
    for code, name, partner, numeric_id, pagm in SERVICES:
        if session.scalars(select(Service.id).where(Service.code == code)).first() is None:
            services.add_service(
                session,
                code=code,
                name=name,
                partner=partner,
                pagm=pagm,
                numeric_id=numeric_id,
                actor="demo",
            )


def _ensure_mandate(session: Session) -> None:
    client, firm, codes = MANDATE
    client_id = session.scalars(select(Company.id).where(Company.siren == client)).one()
    firm_id = session.scalars(select(Company.id).where(Company.siren == firm)).one()
    exists = session.scalars(
        select(Mandate.id).where(
            Mandate.client_company_id == client_id, Mandate.firm_company_id == firm_id
        )
    ).first()
    if exists is None:
        services.add_mandate(
            session, client_siren=client, firm_siren=firm, services=codes, actor="demo"
        )


def _ensure_declarants(session: Session, app: Flask) -> list[DemoLogin]:
    logins = []
    for siret, last, first, email, admin in DECLARANTS:
        person = session.scalars(select(Declarant).where(Declarant.email_key == email)).first()
        if person is None:
            person = services.add_declarant(
                session,
                siret=siret,
                last_name=last,
                first_name=first,
                email=email,
                password=DEMO_PASSWORD,
                passwords=passwords(app),
                admin=admin,
                actor="demo",
            )
        logins.append(DemoLogin(person.id, siret, last, first, email))
    return logins


def _ensure_habilitations(session: Session, logins: list[DemoLogin]) -> None:
    ids = {login.email: login.declarant_id for login in logins}
    for email, siret, code, role in HABILITATIONS:
        services.grant_habilitation(
            session,
            declarant_id=ids[email],
            siret=siret,
            service_code=code,
            role=role,
            actor="demo",
        )


def load(app: Flask) -> list[DemoLogin]:
    """Create (or find) the demo directory; returns the demo logins."""
    session = database(app).sessions()
    try:
        _ensure_companies(session)
        _ensure_services(session)
        _ensure_mandate(session)
        logins = _ensure_declarants(session, app)
        _ensure_habilitations(session, logins)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    return logins


def describe(logins: list[DemoLogin], base_url: str) -> str:
    """The demo logins as printed by ``idp serve --demo``."""
    lines = [
        f"Annuaire de démonstration prêt — portail : {base_url}/",
        f"Mot de passe de tous les comptes : {DEMO_PASSWORD}",
        "Comptes (SIRET / nom / prénom, ou courriel) :",
    ]
    for login in logins:
        lines.append(
            f"  {login.siret}  {login.last_name:<10} {login.first_name:<8} "
            f"{login.email}  (id {login.declarant_id})"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- demo partner sites

DEMO_PARTNER = "Partenaire démo"


def partner_site(
    app: Flask, *, base_url: str, name: str = DEMO_PARTNER, service: str = "DSN"
) -> PartnerSite:
    """A demo partner site living at ``base_url`` (its SAML key is kept in memory)."""
    folder = Path(app.instance_path) / "partenaires" / slug(name)
    return PartnerSite(
        name=name,
        base_url=base_url.rstrip("/"),
        idp_url=app.config["BASE_URL"],
        folder=folder,
        service=service,
    )


def register_partner_site(app: Flask, site: PartnerSite) -> None:
    """Register (or update: idempotent) the site as a SAML SP and a public OIDC client
    receiving ``site.service``, landing URL its ACS."""
    settings = PartnerSettings(
        name=site.name,
        saml_metadata=site_metadata(site, load_key(site.folder)),
        services=[site.service],
        landing_url=site.acs_url,
        token_format="saml",
        api_audience=site.api_audience,
        client=ClientSettings(
            client_id=site.client_id,
            token_auth="none",
            redirect_uris=[site.callback_url, site.logged_out_url],
            grants=["authorization_code"],
            scopes=["openid", "profile"],
        ),
    )
    session = database(app).sessions()
    try:
        existing = session.scalars(select(Partner.id).where(Partner.name == site.name)).first()
        if existing is None:
            add_partner(session, settings, actor="demo")
        else:
            edit_partner(session, site.name, settings, actor="demo")
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
