"""A partner's site for the browser tests: the pages a partner writes by following
widget/README.md (the script tag with its integrity, ``mount`` or the declarative
``div``, the ``redirectUri`` page calling ``handleCallback``), plus a framing attempt
(the third-party cookie probe is test_third_party_cookies's own). Results land in
``window.results`` for the test to read."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, request

NONCE = "nonce-du-partenaire-0123456789"
_RECORD = """
<script>
window.results = [];
window.record = (kind) => (detail) => window.results.push({[kind]: detail});
window.ready = () => {
  const host = document.querySelector("#connexion");
  const button = host && host.shadowRoot && host.shadowRoot.querySelector("button");
  return !!button && !button.disabled;
};
</script>
"""


def _page(body: str, head: str = "") -> str:
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>Site partenaire</title>{_RECORD}{head}</head>"
        f"<body><main><h1>Site partenaire</h1>{body}</main></body></html>"
    )


def create(*, idp: str, client_id: str, integrity: str) -> Flask:
    """The partner's site (served on the registered origin and on a stranger's)."""
    site = Flask("partner_site")

    def script(with_sri: bool = True) -> str:
        checked = f' integrity="{integrity}" crossorigin="anonymous"' if with_sri else ""
        return f'<script src="{idp}/widget/v1/widget.js"{checked}></script>'

    def options() -> str:
        here = request.host_url.rstrip("/")
        return json.dumps(
            {
                "clientId": client_id,
                "mode": request.args.get("mode", "login"),  # ?mode=register: "Créer un compte"
                "redirectUri": f"{here}/retour",
                "nonce": NONCE,
                "scope": "openid profile",
                "locale": "fr",
            }
        )

    @site.get("/")
    def home() -> str:
        mount = (
            "<script>InteropsWidget.mount(document.getElementById('connexion'), "
            f"Object.assign({options()}, "
            "{onSuccess: record('ok'), onError: record('error')}));</script>"
        )
        return _page(
            '<div id="connexion"></div>' + mount,
            head=script(with_sri=request.args.get("sans_sri") is None),
        )

    @site.get("/declaratif")
    def declarative() -> str:
        here = request.host_url.rstrip("/")
        return _page(
            '<div id="connexion" data-interops-widget '
            f'data-client-id="{client_id}" data-mode="login" data-locale="en" '
            f'data-redirect-uri="{here}/retour" data-nonce="{NONCE}" data-scope="openid profile" '
            'data-on-success="partnerOk" data-on-error="partnerError"></div>',
            head="<script>window.partnerOk = record('ok');"
            "window.partnerError = record('error');</script>" + script(),
        )

    @site.get("/retour")
    def back() -> str:
        return _page(
            "<p>Retour de connexion</p><script>InteropsWidget.handleCallback("
            "{onSuccess: record('ok'), onError: record('error')});</script>",
            head=script(),
        )

    @site.get("/cadre")
    def framed() -> str:
        return _page(f'<iframe src="{idp}/connexion" title="connexion"></iframe>')

    return site


def strict_profile(folder: Path) -> Path:
    """A browser profile whose cookie setting blocks third-party cookies."""
    profile = folder / "profil-strict"
    (profile / "Default").mkdir(parents=True)
    preferences = {"profile": {"cookie_controls_mode": 1, "block_third_party_cookies": True}}
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    return profile
