"""``idp partner``: register, show, list and edit partner organisms."""

from __future__ import annotations

import json
from typing import Any

import click

from idp.cli import partner_metadata
from idp.cli.common import CommandError, directory_session, emit, json_option
from partners import services as registry

#: where the partner hears of changes: security events and back-channel logout (idp.events)
_EVENT_OPTIONS = [
    click.option(
        "--backchannel-logout-uri",
        help="URL de déconnexion back-channel (jetons de déconnexion) ; vide : aucune.",
    ),
    click.option(
        "--set-receiver",
        "event_receiver_url",
        help="URL de réception des événements de sécurité (RFC 8935) ; vide : aucune.",
    ),
]
#: the widget's look for this partner (partners.theme; an empty value removes it)
_THEME_OPTIONS = [
    click.option("--theme-primary", help="Couleur du bouton du widget (#RRGGBB)."),
    click.option("--theme-text", help="Couleur du texte du bouton (#RRGGBB, contraste ≥ 4,5:1)."),
    click.option("--theme-logo", help="URL https du logo affiché dans le widget."),
    click.option("--theme-label-fr", help="Libellé du bouton en français."),
    click.option("--theme-label-en", help="Libellé du bouton en anglais."),
]


def _theme(opts: dict[str, Any]) -> dict[str, Any] | None:
    """The theme's changes given on the command line (None: none given)."""
    changes: dict[str, Any] = {
        key: opts.pop(f"theme_{option}")
        for key, option in (("primary", "primary"), ("text", "text"), ("logo_url", "logo"))
    }
    labels = {locale: opts.pop(f"theme_label_{locale}") for locale in ("fr", "en")}
    changes["label"] = {k: v for k, v in labels.items() if v is not None}
    given = {k: v for k, v in changes.items() if v is not None and v != {}}
    return given or None


def _partner_options(func: Any) -> Any:
    options = [
        click.option(
            "--saml-metadata", help="Métadonnées SAML du fournisseur de service (fichier ou URL)."
        ),
        click.option("--client-id", help="Identifiant du client OAuth / OpenID Connect."),
        click.option(
            "--redirect-uri",
            "redirect_uris",
            multiple=True,
            help="URI de retour exacte (répétable).",
        ),
        click.option(
            "--origin", "origins", multiple=True, help="Origine autorisée du widget (répétable)."
        ),
        click.option(
            "--grant", "grants", multiple=True, help="Type d'autorisation OAuth (répétable)."
        ),
        click.option(
            "--token-auth", help="none, client_secret_basic, client_secret_post ou private_key_jwt."
        ),
        click.option(
            "--jwks", "jwks_source", help="JWKS du client pour private_key_jwt (fichier ou URL)."
        ),
        click.option("--scope", "scopes", multiple=True, help="Portée autorisée (répétable)."),
        click.option(
            "--frontchannel-logout-uri",
            help="URL de déconnexion front-channel du client OpenID Connect.",
        ),
        click.option(
            "--new-secret",
            is_flag=True,
            help="Nouveau secret du client (affiché une fois ; l'ancien est refusé).",
        ),
        click.option("--service", "service_codes", multiple=True, help="Service reçu (répétable)."),
        click.option("--landing-url", help="URL d'arrivée pour la navigation depuis le portail."),
        click.option("--token-format", type=click.Choice(["saml", "jwt"]), help="Format du jeton."),
        click.option(
            "--token-lifetime", type=int, help="Durée de vie des jetons (secondes, ≤ 300)."
        ),
        click.option("--skew", type=int, help="Tolérance d'horloge (secondes)."),
        click.option(
            "--claim", "claims", multiple=True, help="Attribut supplémentaire autorisé (email)."
        ),
        click.option(
            "--trusted-portal/--no-trusted-portal",
            default=None,
            help="Portail de confiance (jetons entrants acceptés).",
        ),
        click.option("--api-audience", help="Audience par défaut de ses jetons d'accès."),
        click.option("--identifier", help="Identifiant du partenaire (audience des jetons)."),
    ]
    extra = [*_EVENT_OPTIONS, *_THEME_OPTIONS, *partner_metadata.OPTIONS]
    for option in reversed([*options, *extra]):
        func = option(func)
    return json_option(func)


def _settings(name: str, opts: dict[str, Any]) -> registry.PartnerSettings:
    from idp.cli.token import read_source

    client = None
    theme = _theme(opts)
    oauth_given = any(
        opts[k]
        for k in (
            "redirect_uris",
            "grants",
            "token_auth",
            "jwks_source",
            "frontchannel_logout_uri",
            "backchannel_logout_uri",
            "new_secret",
        )
    )
    if opts["client_id"]:
        jwks = jwks_uri = None
        source = opts["jwks_source"]
        if source and source.startswith("https://"):
            jwks_uri = source
        elif source:
            try:
                jwks = json.loads(read_source(source))
            except ValueError:
                raise CommandError(f"JWKS illisible : {source}") from None
        client = registry.ClientSettings(
            client_id=opts["client_id"],
            redirect_uris=opts["redirect_uris"],
            origins=opts["origins"],
            grants=opts["grants"],
            token_auth=opts["token_auth"] or "client_secret_basic",
            jwks=jwks,
            jwks_uri=jwks_uri,
            scopes=opts["scopes"] or ("openid", "profile"),
            frontchannel_logout_uri=opts["frontchannel_logout_uri"],
            backchannel_logout_uri=opts["backchannel_logout_uri"],
            new_secret=opts["new_secret"],
        )
    elif oauth_given or opts["origins"]:
        raise CommandError("--client-id est obligatoire avec les options OAuth")
    metadata = partner_metadata.settings(opts)  # a file, or a URL fetched again later
    return registry.PartnerSettings(
        name=name,
        **metadata,
        client=client,
        services=opts["service_codes"],
        landing_url=opts["landing_url"],
        token_format=opts["token_format"],
        token_lifetime=opts["token_lifetime"],
        skew=opts["skew"],
        claims=opts["claims"],
        trusted_portal=opts["trusted_portal"],
        api_audience=opts["api_audience"],
        identifier=opts["identifier"],
        event_receiver_url=opts["event_receiver_url"],
        theme=theme,
    )


def _print(as_json: bool, result: registry.Registered, verb: str) -> None:
    payload = registry.describe(result.partner)
    if result.client_secret:
        payload["client_id"] = result.partner.clients[0].client_id
        payload["client_secret"] = result.client_secret
    lines = [f"partenaire {result.partner.name} {verb} (identifiant {result.partner.identifier})"]
    if result.client_secret:
        lines.append(f"secret du client (affiché une seule fois) : {result.client_secret}")
    emit(as_json, payload, "\n".join(lines))


@click.group("partner")
def partner_group() -> None:
    """Registre des partenaires (SAML, OpenID Connect, widget)."""


@partner_group.command("add")
@click.option("--name", required=True, help="Nom de l'organisme partenaire.")
@_partner_options
def partner_add(name: str, as_json: bool, **opts: Any) -> None:
    """Enregistre un partenaire ; un secret de client généré est affiché une seule fois."""
    settings = _settings(name, opts)
    with directory_session() as session:
        result = registry.add_partner(session, settings, actor="cli")
        _print(as_json, result, "enregistré")


@partner_group.command("edit")
@click.argument("name")
@_partner_options
def partner_edit(name: str, as_json: bool, **opts: Any) -> None:
    """Modifie les réglages donnés d'un partenaire."""
    settings = _settings(name, opts)
    with directory_session() as session:
        result = registry.edit_partner(session, name, settings, actor="cli")
        _print(as_json, result, "modifié")


@partner_group.command("show")
@click.argument("name")
@json_option
def partner_show(name: str, as_json: bool) -> None:
    """Affiche les réglages d'un partenaire."""
    with directory_session() as session:
        partner = registry.get_partner(session, name)
        payload = registry.describe(partner)
        payload["services"] = [s.code for s in registry.services_of(session, partner)]
    emit(as_json, payload, json.dumps(payload, ensure_ascii=False, indent=2))


@partner_group.command("list")
@json_option
def partner_list(as_json: bool) -> None:
    """Liste les partenaires."""
    with directory_session() as session:
        rows = [(p.name, p.identifier, p.token_format) for p in registry.list_partners(session)]
    emit(
        as_json,
        {"partners": [{"name": n, "identifier": i, "token_format": f} for n, i, f in rows]},
        "\n".join(f"{n:<24} {f:<5} {i}" for n, i, f in rows) or "aucun partenaire",
    )


def register(cli: click.Group) -> None:
    partner_metadata.register(partner_group)  # idp partner refresh-metadata
    cli.add_command(partner_group)
