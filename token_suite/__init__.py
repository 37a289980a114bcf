"""Interops token suite: issue and verify the SAML jeton and the Interops-R JWT.

Standalone: no Flask, no database. See ``docs/partners.md``.
"""

from token_suite import errors
from token_suite.trust import Trust
from token_suite.vector import Habilitation, IdentityVector

__all__ = ["Habilitation", "IdentityVector", "Trust", "errors", "jwt", "saml"]


def __getattr__(name: str) -> object:
    # saml/jwt are imported lazily so that ``import token_suite`` stays light.
    if name in ("saml", "jwt", "metadata", "replay"):
        import importlib

        return importlib.import_module(f"token_suite.{name}")
    raise AttributeError(name)
