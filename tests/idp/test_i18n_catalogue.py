"""One translation layer, complete: every French text a page or the code shows through
``_`` (or marks with ``N_`` for a table) has its English entry, with the same
placeholders, no entry is left over, and templates hold no text outside ``_``.

The demo partner's pages (``templates/partner/``) stand for a partner's own site and
are not the service's text.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from flask import Flask

from idp import i18n

IDP = Path(i18n.__file__).resolve().parent
TEMPLATES = IDP / "templates"
#: the widget's endpoints (above idp) show their texts through the same layer
WIDGET = IDP.parent / "widget"
SOURCES = (IDP, WIDGET)
MARKERS = {"_", "gettext", "N_"}
_TEMPLATE_CALL = re.compile(r"""_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", re.DOTALL)


def _python_texts(source: str) -> tuple[set[str], list[str]]:
    """Texts given to a marker as literals, and the names of unmarked module-level
    strings given to ``_`` (which the catalogue check could not see)."""
    tree = ast.parse(source)
    plain = {
        node.targets[0].id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    texts: set[str] = set()
    unmarked: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in MARKERS or not node.args:
            continue
        argument = node.args[0]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            texts.add(argument.value)
        elif isinstance(argument, ast.Name) and argument.id in plain:
            unmarked.append(argument.id)
    return texts, unmarked


def _template_texts(text: str) -> set[str]:
    return {ast.literal_eval(match.group(1)) for match in _TEMPLATE_CALL.finditer(text)}


def _service_templates() -> list[Path]:
    return [
        path
        for path in sorted(TEMPLATES.rglob("*"))
        if path.is_file() and "partner" not in path.relative_to(TEMPLATES).parts
    ] + sorted(path for path in (WIDGET / "templates").rglob("*") if path.is_file())


def _python_sources() -> list[Path]:
    return sorted(path for source in SOURCES for path in source.rglob("*.py"))


def used_texts() -> set[str]:
    texts: set[str] = set()
    for path in _python_sources():
        texts |= _python_texts(path.read_text("utf-8"))[0]
    for path in _service_templates():
        texts |= _template_texts(path.read_text("utf-8"))
    return texts


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_shown_text_has_its_english_entry() -> None:
    missing = sorted(used_texts() - set(i18n.EN))
    assert missing == [], f"add to idp/translations/en.json: {missing}"


def test_no_entry_is_left_over() -> None:
    assert sorted(set(i18n.EN) - used_texts()) == []


@pytest.mark.parametrize("french", sorted(i18n.EN))
def test_translation_keeps_the_placeholders(french: str) -> None:
    english = i18n.EN[french]
    assert english.strip() and _placeholders(english) == _placeholders(french)


def test_module_level_texts_are_marked() -> None:
    unmarked = {
        str(path.relative_to(IDP.parent)): names
        for path in _python_sources()
        if (names := _python_texts(path.read_text("utf-8"))[1])
    }
    assert unmarked == {}, "wrap these module-level texts in N_(...)"


def _bare_words(text: str) -> list[str]:
    for pattern in (r"\{#.*?#\}", r"\{%.*?%\}", r"\{\{.*?\}\}", r"<script.*?</script>"):
        text = re.sub(pattern, " ", text, flags=re.DOTALL)
    text = re.sub(r"<style.*?</style>|<[^>]*>", " ", text, flags=re.DOTALL)
    return re.findall(r"[A-Za-zÀ-ÿ]{2,}", text)


@pytest.mark.parametrize("path", _service_templates(), ids=lambda path: path.name)
def test_templates_show_no_text_outside_the_layer(path: Path) -> None:
    assert _bare_words(path.read_text("utf-8")) == []


def test_the_checks_see_what_they_look_for() -> None:
    texts, unmarked = _python_texts('A = "x"\nB = N_("y")\n_("z")\n_(A)\nN_("w")\n_(B)\n')
    assert texts == {"y", "z", "w"} and unmarked == ["A"]
    assert _template_texts("""{{ _("a") }} {{ _('b', n=1) }}""") == {"a", "b"}
    assert _bare_words('<p>{{ _("ok") }}</p> <p>Texte nu</p>') == ["Texte", "nu"]
    assert _placeholders("{a} et {b}") == {"a", "b"}


def test_error_pages_are_french_unless_english_is_chosen(app: Flask) -> None:
    french = app.test_client().get("/nulle-part").get_data(as_text=True)
    assert "Page introuvable" in french and "n'existe pas" in french.replace("&#39;", "'")
    english = app.test_client().get("/nulle-part?lang=en").get_data(as_text=True)
    assert "Page not found" in english and "does not exist" in english
    # our own description (the CSRF refusal) goes through the layer too
    refused = app.test_client().post("/connexion").get_data(as_text=True)
    assert "Requête invalide" in refused and "anti-CSRF" in refused
    refused = app.test_client().post("/connexion?lang=en").get_data(as_text=True)
    assert "Bad request" in refused and "reload the page" in refused
