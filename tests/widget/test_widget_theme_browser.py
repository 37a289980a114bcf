"""Screenshot tests of the widget themed for two partners (issue 17, "Must hold").

The widget is mounted in real chromium on a partner page (``http://localhost:<port>``)
against the IdP (``http://127.0.0.1:<port>``), for three partners: MSA (green, logo,
French wording), CNAV (dark red, another logo, mounted in English) and one without a
theme (the default look). Each mounted widget is screenshotted at a fixed viewport and
scale, with one installed font (DejaVu Sans), no hinting nor LCD anti-aliasing, and
compared with its reference PNG in ``tests/widget/screenshots/`` with a tolerance
(:func:`differences`: at most :data:`MAX_CHANGED` of the pixels may differ by more
than :data:`PIXEL_TOLERANCE` on a channel, and the mean difference must stay under
:data:`MAX_MEAN`). The test fails when the theme is not applied: the two themed
references must differ from each other and from the default look by at least
:data:`MIN_DISTINCT` of their pixels.

Regenerate the references (after a deliberate change of the look) with::

    IDP_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/widget/test_widget_theme_browser.py

and check the new PNGs by eye before committing them. ``IDP_TEST_PORTS=8200-8299``
keeps the servers in a port range (any free port otherwise).

Also here: the themed button passes axe (contrast included), and a hostile theme
answered by the IdP (as if its validation were bypassed) injects neither markup nor CSS.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request

from tests.browser import MARKS, launch
from tests.conftest import MASTER_KEY
from tests.flows.server_support import free_port, free_port_in
from tests.widget.support import callback_of
from tests.widget.test_widget_browser import _serve, _stores

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
UPDATE = os.environ.get("IDP_UPDATE_SCREENSHOTS") == "1"
PIXEL_TOLERANCE = 48  # on 0-255, per channel: anti-aliasing noise
MAX_CHANGED = 0.01  # of the pixels
MAX_MEAN = 2.0  # mean absolute difference per channel
MIN_DISTINCT = 0.2  # of the pixels: two looks that must not be confused
#: deterministic rendering, as far as chromium allows it
RENDERING = ("--font-render-hinting=none", "--disable-lcd-text", "--force-color-profile=srgb")
THEMES: dict[str, dict[str, Any]] = {
    "msa": {
        "primary": "#1E5B2A",
        "text": "#FFFFFF",
        "logo": "<circle cx='20' cy='20' r='18' fill='#1e5b2a'/>",
        "label": {"fr": "Se connecter avec la MSA", "en": "Sign in with MSA"},
    },
    "cnav": {
        "primary": "#FFD75E",
        "text": "#3B0A0A",
        "logo": "<rect x='2' y='2' width='36' height='36' rx='6' fill='#7a1010'/>",
        "label": {"fr": "Connexion CNAV", "en": "CNAV sign-in"},
    },
    "sobre": {},
}
#: (partner, locale) of each screenshot
SHOTS = {"msa": "fr", "cnav": "en", "sobre": "fr"}
pytestmark = MARKS


@dataclass
class Sites:
    idp: str
    partner: str


def _ports(count: int) -> list[int]:
    """``count`` distinct free ports of ``IDP_TEST_PORTS`` (``first-last``), else any."""
    chosen = os.environ.get("IDP_TEST_PORTS")
    if not chosen:
        return [free_port() for _ in range(count)]  # as the other browser tests
    first, last = (int(n) for n in chosen.split("-"))
    found: set[int] = set()
    for _ in range(20 * count):
        found.add(free_port_in(range(first, last + 1)))
        if len(found) == count:
            return sorted(found)
    raise RuntimeError(f"not {count} free ports in {chosen}")


def _site(idp: str) -> Flask:
    """The partner's page: the widget mounted for ``?client=`` in ``?locale=``; logos."""
    site = Flask("themed_partner_site")

    @site.get("/")
    def page() -> str:
        options = {
            "clientId": request.args["client"],
            "locale": request.args.get("locale", "fr"),
            "redirectUri": f"{request.host_url}retour",
        }
        return (
            '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Partenaire</title>'
            "<style>html,body{margin:0;background:#fff;color:#1e1e1e;"
            'font:16px/1.5 "DejaVu Sans"}#connexion{padding:12px}</style>'
            f'<script src="{idp}/widget/v1/widget.js"></script></head>'
            '<body><main><div id="connexion"></div></main><script>'
            "window.mounted = InteropsWidget.mount(document.getElementById('connexion'), "
            f"{json.dumps(options)});</script></body></html>"
        )

    @site.get("/logo-<name>.svg")
    def logo(name: str) -> Response:
        shape = THEMES[name]["logo"]
        svg = f"<svg xmlns='http://www.w3.org/2000/svg' width='40' height='40'>{shape}</svg>"
        return Response(svg, mimetype="image/svg+xml")

    return site


@pytest.fixture(scope="module")
def sites(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sites]:
    from idp.factory import create_app
    from idp.stores.db import database
    from partners.services import ClientSettings, PartnerSettings, add_partner
    from rcd_store import audit

    audit.new_writer_segment()
    folder = tmp_path_factory.mktemp("widget-theme")
    idp_port, partner_port = _ports(2)
    idp, partner = f"http://127.0.0.1:{idp_port}", f"http://localhost:{partner_port}"
    app = create_app(
        {
            **_stores(request, folder),
            "INSTANCE_PATH": str(folder / "instance"),
            "MASTER_KEY": MASTER_KEY,
            "SECRET_KEY": "widget-theme-test",
            "BASE_URL": idp,
        }
    )
    session = database(app).sessions()
    for name, theme in THEMES.items():
        given = {k: v for k, v in theme.items() if k != "logo"}
        if "logo" in theme:
            given["logo_url"] = f"{partner}/logo-{name}.svg"
        client = ClientSettings(
            client_id=name,
            token_auth="none",
            redirect_uris=[callback_of(idp, name)],
            origins=[partner],
        )
        settings = PartnerSettings(name=name.upper(), client=client, theme=given or None)
        add_partner(session, settings, actor="test")
    session.commit()
    session.close()
    servers = [_serve(app, idp_port), _serve(_site(idp), partner_port)]
    yield Sites(idp, partner)
    for server in servers:
        server.shutdown()
        server.server_close()
    database(app).engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        launched = launch(running, *RENDERING)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 480, "height": 160},
        device_scale_factor=1,
        locale="fr-FR",
        color_scheme="light",
        reduced_motion="reduce",
    )
    yield context.new_page()
    context.close()


_READY = """() => {
  const root = document.getElementById('connexion').shadowRoot;
  const button = root && root.querySelector('button');
  const logo = root && root.querySelector('img');
  return !!button && !button.disabled && (!logo || logo.hidden || (logo.complete && logo.naturalWidth > 0));
}"""


def _mounted(page: Any, sites: Sites, client: str, locale: str) -> Any:
    page.goto(f"{sites.partner}/?client={client}&locale={locale}")
    page.wait_for_function(_READY)
    page.wait_for_timeout(100)  # the logo painted
    return page.locator("#connexion")


def _shot(page: Any, sites: Sites, client: str, locale: str) -> bytes:
    """The page's corner where the widget is mounted, always the same size (so that two
    looks compare pixel by pixel)."""
    _mounted(page, sites, client, locale)
    clip = {"x": 0, "y": 0, "width": 360, "height": 72}
    return page.screenshot(clip=clip, animations="disabled", caret="hide")  # type: ignore[no-any-return]


def differences(a: bytes, b: bytes) -> tuple[float, float]:
    """(share of pixels differing by more than PIXEL_TOLERANCE on a channel, mean absolute
    difference per channel) of two PNGs; (1.0, 255.0) when their sizes differ."""
    from PIL import Image, ImageChops, ImageStat

    first = Image.open(io.BytesIO(a)).convert("RGB")
    second = Image.open(io.BytesIO(b)).convert("RGB")
    if first.size != second.size:
        return 1.0, 255.0
    diff = ImageChops.difference(first, second)
    red, green, blue = diff.split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    changed = largest.point(lambda v: 255 if v > PIXEL_TOLERANCE else 0).histogram()[255]
    width, height = diff.size
    return changed / (width * height), sum(ImageStat.Stat(diff).mean) / 3


def _reference(name: str, shot: bytes) -> bytes:
    path = SCREENSHOTS / f"{name}.png"
    if UPDATE:
        SCREENSHOTS.mkdir(exist_ok=True)
        path.write_bytes(shot)
    assert path.exists(), f"no reference {path.name}: run with IDP_UPDATE_SCREENSHOTS=1"
    return path.read_bytes()


def test_the_widget_themed_for_two_partners_matches_its_references(
    sites: Sites, page: Any, tmp_path: Path
) -> None:
    shots = {name: _shot(page, sites, name, locale) for name, locale in SHOTS.items()}
    for name, shot in shots.items():
        (tmp_path / f"{name}.png").write_bytes(shot)  # to look at when it fails
        changed, mean = differences(shot, _reference(name, shot))
        assert changed <= MAX_CHANGED and mean <= MAX_MEAN, (name, changed, mean, tmp_path)
    references = {name: (SCREENSHOTS / f"{name}.png").read_bytes() for name in SHOTS}
    for first, second in [("msa", "cnav"), ("msa", "sobre"), ("cnav", "sobre")]:
        changed, _mean = differences(references[first], references[second])
        assert changed >= MIN_DISTINCT, f"{first} and {second} look alike: theme not applied?"


_LOOK = """() => {
  const root = document.getElementById('connexion').shadowRoot;
  const button = root.querySelector('button'), logo = root.querySelector('img');
  const style = getComputedStyle(button);
  return {label: button.textContent, background: style.backgroundColor, colour: style.color,
          images: root.querySelectorAll('img').length, alt: logo.alt,
          src: logo.getAttribute('src'), hidden: logo.hidden,
          inline: button.getAttribute('style'), pwned: window.pwned === 1};
}"""


def _look(page: Any, sites: Sites, client: str, locale: str) -> dict[str, Any]:
    """What the mounted widget shows: wording, computed colours, logo, inline style."""
    _mounted(page, sites, client, locale)
    return page.evaluate(_LOOK)  # type: ignore[no-any-return]


def test_the_theme_is_applied_in_the_shadow_root(sites: Sites, page: Any) -> None:
    assert _look(page, sites, "msa", "en") == {
        "label": "Sign in with MSA",
        "background": "rgb(30, 91, 42)",
        "colour": "rgb(255, 255, 255)",
        "images": 1,
        "alt": "MSA",
        "src": f"{sites.partner}/logo-msa.svg",
        "hidden": False,
        "inline": "--interops-primary: #1e5b2a; --interops-text: #ffffff;",
        "pwned": False,
    }
    sober = _look(page, sites, "sobre", "en")
    assert sober["label"] == "Sign in with Interops"  # no wording of its own: translated
    assert (sober["background"], sober["hidden"]) == ("rgb(0, 0, 145)", True)


@pytest.mark.parametrize("name", ["msa", "cnav"])
def test_the_themed_button_passes_axe(sites: Sites, page: Any, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    _mounted(page, sites, name, SHOTS[name])
    report = Axe().run(
        page, context="#connexion", options={"resultTypes": ["violations", "passes"]}
    )
    serious = [
        v["id"] for v in report.response["violations"] if v.get("impact") in ("serious", "critical")
    ]
    assert serious == []
    passed = {rule["id"] for rule in report.response["passes"]}
    assert {"button-name", "color-contrast", "image-alt"} <= passed


_HOSTILE: dict[str, Any] = {
    "name": "<img src=x onerror=window.pwned=1>",
    "primary": "red;}button{background:url(https://evil.example/x)",
    "text": "#fff;background:#fff",
    "logo_url": "javascript:window.pwned=1",
    "label": {"fr": "<img src=x onerror=window.pwned=1>Entrer"},
}


def test_a_hostile_theme_injects_neither_markup_nor_css(sites: Sites, page: Any) -> None:
    """As if the IdP's validation were bypassed: the widget still applies nothing but
    #RRGGBB colours, an http(s) logo and text."""

    def hostile(route: Any) -> None:
        answer = route.fetch()
        body = {**answer.json(), "theme": _HOSTILE}
        route.fulfill(response=answer, body=json.dumps(body))

    page.route("**/widget/v1/config*", hostile)
    seen = _look(page, sites, "msa", "fr")
    assert seen == {
        "label": _HOSTILE["label"]["fr"],  # shown as text, never parsed
        "background": "rgb(0, 0, 145)",  # the default look
        "colour": "rgb(255, 255, 255)",
        "images": 1,
        "alt": "",
        "src": None,
        "hidden": True,
        "inline": None,
        "pwned": False,
    }
