"""The one ACS chooser: SAML SSO, navigation and ``idp token issue`` post a token only to a
registered HTTP-POST assertion consumer service, the default one when none is asked."""

from partners.models import SamlServiceProvider
from partners.services import default_acs, post_acs

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
ARTIFACT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"


def _sp(*acs: tuple[str, str, int | None, bool]) -> SamlServiceProvider:
    return SamlServiceProvider(
        acs=[{"binding": b, "url": u, "index": i, "default": d} for b, u, i, d in acs]
    )


def test_the_default_post_acs_wins_then_the_lowest_index() -> None:
    sp = _sp(
        (ARTIFACT, "https://sp.example/artifact", 0, True),
        (POST, "https://sp.example/acs2", 2, False),
        (POST, "https://sp.example/acs1", 1, False),
    )
    assert default_acs(sp) == "https://sp.example/acs1"
    assert [a["url"] for a in post_acs(sp)] == [
        "https://sp.example/acs2",
        "https://sp.example/acs1",
    ]
    sp.acs[1]["default"] = True
    assert default_acs(sp) == "https://sp.example/acs2"


def test_no_post_acs_means_no_address() -> None:
    assert default_acs(_sp((ARTIFACT, "https://sp.example/artifact", 0, True))) is None
    assert default_acs(None) is None and post_acs(None) == []
