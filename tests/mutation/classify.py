"""Score a mutmut 3 run and list its survivors (docs/mutation.md, "Mutation testing").

    python tests/mutation/classify.py WORKDIR [--markdown]

Reads ``WORKDIR/mutants/**/*.py.meta`` (each mutant's exit code) and the mutated
sources beside them, and sets aside *message-only* mutants: those whose only change
is the text of an exception's message (``raise X("...")`` / ``X(None)``) or of a log
line, found here, plus those tests/mutation/judged.txt names as ``message`` (a text that
only reaches an error's message through a helper). Prints, per file, killed / survived /
message-only / not checked and the score ``killed / (killed + survived)`` over the rest,
then each survivor with the line it changes and its judgement from judged.txt
(``equivalent: why``), or ``UNJUDGED``.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 37, -11, -9, 36, 24, -24, 152, 255}  # failed, crashed or timed out: caught
SURVIVED = {0}
JUDGED = Path(__file__).with_name("judged.txt")


def _judgements() -> dict[str, tuple[str, str]]:
    """``mutant -> (kind, why)`` from judged.txt: ``name kind why...`` per line, ``#`` comments."""
    found: dict[str, tuple[str, str]] = {}
    for line in JUDGED.read_text("utf-8").splitlines() if JUDGED.exists() else []:
        if line.strip() and not line.startswith("#"):
            name, kind, why = (line.split(maxsplit=2) + ["", ""])[:3]
            found[name] = (kind, why)
    return found


def _functions(source: str) -> dict[str, ast.AST]:
    tree = ast.parse(source)
    found: dict[str, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = node
    return found


_POSITIONS = ("lineno", "col_offset", "end_lineno", "end_col_offset", "name")


def _differences(original: ast.AST, mutant: ast.AST) -> list[tuple[ast.AST, ast.AST]]:
    """The outermost pairs of nodes that differ (same shape above them)."""
    if type(original) is not type(mutant):
        return [(original, mutant)]
    pairs: list[tuple[ast.AST, ast.AST]] = []
    for field, value in ast.iter_fields(original):
        other = getattr(mutant, field, None)
        if isinstance(value, ast.AST) and isinstance(other, ast.AST):
            pairs += _differences(value, other)
        elif isinstance(value, list) and isinstance(other, list):
            if len(value) != len(other):
                return [(original, mutant)]
            for left, right in zip(value, other, strict=True):
                if isinstance(left, ast.AST) and isinstance(right, ast.AST):
                    pairs += _differences(left, right)
                elif left != right:
                    return [(original, mutant)]
        elif field not in _POSITIONS and value != other:
            return [(original, mutant)]
    return pairs


def _judged(judged: dict[str, tuple[str, str]], key: str) -> tuple[str, str]:
    """The judgement of ``key``: its own line, else the first matching glob line."""
    if key in judged:
        return judged[key]
    return next((v for k, v in judged.items() if fnmatch.fnmatchcase(key, k)), ("", ""))


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_message(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """``node`` is (inside) the argument of an exception raised, or of a log call."""
    text = isinstance(node, ast.Constant) and isinstance(node.value, str | type(None))
    if not text and not isinstance(node, ast.JoinedStr):
        return False
    current = node
    while current in parents:
        parent = parents[current]
        if isinstance(parent, ast.Call) and current in parent.args:
            grand = parents.get(parent)
            if isinstance(grand, ast.Raise):
                return True
            func = parent.func
            return isinstance(func, ast.Attribute) and func.attr in ("error", "warning", "info")
        if isinstance(parent, ast.JoinedStr | ast.FormattedValue | ast.BinOp):
            current = parent
            continue
        return False
    return False


def _show(node: ast.AST) -> str:
    """Source of ``node``, or its type for an operator (``GtE``, ``And``...)."""
    return ast.unparse(node) or type(node).__name__


def classify(work: Path) -> tuple[dict[str, Counter[str]], list[tuple[str, str, str]]]:
    counts: dict[str, Counter[str]] = {}
    survivors: list[tuple[str, str, str]] = []
    judged = _judgements()
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        source_path = meta.with_suffix("")
        module = str(source_path.relative_to(work / "mutants"))
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        functions = _functions(source_path.read_text("utf-8"))
        parents_by_original: dict[str, dict[ast.AST, ast.AST]] = {}
        tally = counts.setdefault(module, Counter())
        for key, code in exit_codes.items():
            name = key.rsplit(".", 1)[-1]
            if code is None:
                tally["not checked"] += 1
                continue
            if code in KILLED:
                tally["killed"] += 1
                continue
            base = name.rsplit("__mutmut_", 1)[0]
            original = functions.get(f"{base}__mutmut_orig")
            mutant = functions.get(name)
            diffs = _differences(original, mutant) if original and mutant else []
            if original is not None and original not in parents_by_original:
                parents_by_original[base] = _parents(original)
            parents = parents_by_original.get(base, {})
            kind, why = _judged(judged, key)
            if kind == "message" or (diffs and all(_is_message(x, parents) for x, _ in diffs)):
                tally["message-only"] += 1
                continue
            status = "survived" if code in SURVIVED else f"exit {code}"
            tally["survived"] += 1
            change = "; ".join(f"{_show(left)} -> {_show(right)}"[:120] for left, right in diffs)
            verdict = f"{kind}: {why}" if kind else "UNJUDGED"
            survivors.append((module, name, f"{status} `{change}` ({verdict})"))
    return counts, survivors


def main() -> None:
    work = Path(sys.argv[1])
    markdown = "--markdown" in sys.argv
    counts, survivors = classify(work)
    print("| file | killed | survived | message-only | not checked | score |")
    print("|---|---|---|---|---|---|")
    for module, tally in counts.items():
        judged = tally["killed"] + tally["survived"]
        score = f"{100 * tally['killed'] / judged:.1f}%" if judged else "-"
        row = [tally[k] for k in ("killed", "survived", "message-only", "not checked")]
        print(f"| {module} | " + " | ".join(map(str, row)) + f" | {score} |")
    print()
    for module, name, change in survivors:
        print(f"- `{module}` `{name}`: {change}" if markdown else f"{module} {name} {change}")


if __name__ == "__main__":
    main()
