"""The exception classes a package defines, found by walking its modules.

Each library has one error root (``InteropsError``, ``KeysError``, ``DirectoryError``):
a caller catches one class and maps it (wire code, HTTP status) without a list.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil


def defined_exceptions(package_name: str) -> dict[str, type[BaseException]]:
    """Every exception class defined (not merely imported) in a module of the package."""
    package = importlib.import_module(package_name)
    names = [package_name] + [
        info.name for info in pkgutil.walk_packages(package.__path__, package_name + ".")
    ]
    found: dict[str, type[BaseException]] = {}
    for name in names:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found[f"{name}.{cls.__qualname__}"] = cls
    return found


def outside(root: type[BaseException], package_name: str) -> list[str]:
    """The package's exception classes that do not derive from ``root`` (sorted)."""
    return sorted(
        name for name, cls in defined_exceptions(package_name).items() if not issubclass(cls, root)
    )
