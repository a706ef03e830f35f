"""The SQL-shaped mutants mutmut does not make, found with `ast` and applied as text edits:

- `where-removed`: one `.where(...)`, `.filter(...)` or `.filter_by(...)` taken out of a
  chain (`X.where(a)` becomes `X`); a call with several conditions also loses each one alone;
- `commit-dropped`: a `session.commit()` (or any `<name>.commit()` statement) becomes `pass`;
- `swap`: `&` and `|` exchanged in an expression that calls or compares something (not in
  type annotations), `and_` and `or_` exchanged, and `and`/`or` inside a `.where(...)`.

Each mutant is the whole module's new text, with a one-line description and its line.
"""

from __future__ import annotations

import ast
import bisect
import difflib
from dataclasses import dataclass

OPERATORS = ("where-removed", "commit-dropped", "swap")
_FILTERS = frozenset({"where", "filter", "filter_by"})
_SWAPPED_CALLS = {"and_": "or_", "or_": "and_"}


@dataclass(frozen=True)
class Mutant:
    operator: str
    line: int
    description: str
    source: str  # the mutated module

    def diff(self, original: str, path: str) -> str:
        return "".join(
            difflib.unified_diff(
                original.splitlines(keepends=True),
                self.source.splitlines(keepends=True),
                f"a/{path}",
                f"b/{path}",
                n=1,
            )
        )


class _Text:
    """The module's text, addressed by `ast` positions (columns count UTF-8 bytes)."""

    def __init__(self, source: str) -> None:
        self.data = source.encode()
        self.starts = [0]
        for index, byte in enumerate(self.data):
            if byte == ord("\n"):
                self.starts.append(index + 1)

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def of(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.data[start:end].decode()

    def line_at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def replaced(self, span: tuple[int, int], text: str) -> str:
        start, end = span
        return (self.data[:start] + text.encode() + self.data[end:]).decode()


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """Ids of every node inside a type annotation (never evaluated as SQL)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(inner) for root in roots for inner in ast.walk(root)}


def _evaluates_something(node: ast.AST) -> bool:
    """A call or comparison inside: a SQL expression, not a type union like `A | None`."""
    return any(isinstance(inner, ast.Call | ast.Compare) for inner in ast.walk(node))


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    text = _Text(source)
    annotations = _annotation_nodes(tree)
    found: list[Mutant] = []

    def add(
        operator: str, line: int, description: str, span: tuple[int, int], replacement: str
    ) -> None:
        mutated = text.replaced(span, replacement)
        ast.parse(mutated)  # every mutant is valid Python
        found.append(Mutant(operator, line, description, mutated))

    filter_arguments: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _FILTERS
        ):
            for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                filter_arguments.update(id(inner) for inner in ast.walk(argument))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            receiver = text.of(node.func.value)
            if method in _FILTERS:
                line = node.func.end_lineno or node.lineno  # the line of `.where`
                shown = ast.unparse(ast.Call(ast.Name(method), node.args, node.keywords))
                add(
                    "where-removed",
                    line,
                    f".{_short(shown, 70)} removed",
                    text.span(node),
                    receiver,
                )
                parts = [text.of(argument) for argument in node.args] + [
                    f"{keyword.arg}={text.of(keyword.value)}" if keyword.arg else
                    f"**{text.of(keyword.value)}"
                    for keyword in node.keywords
                ]  # fmt: skip
                shown_parts = [ast.unparse(part) for part in [*node.args, *node.keywords]]
                if len(parts) > 1:
                    for index, shown in enumerate(shown_parts):
                        kept = ", ".join(parts[:index] + parts[index + 1 :])
                        add(
                            "where-removed",
                            line,
                            f".{method}(...) without `{_short(shown, 60)}`",
                            text.span(node),
                            f"{receiver}.{method}({kept})",
                        )
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "commit"
            and not node.value.args
        ):
            add("commit-dropped", node.lineno, f"{text.of(node)} dropped", text.span(node), "pass")
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.BitAnd | ast.BitOr)
            and id(node) not in annotations
            and _evaluates_something(node)
        ):
            left_end = text.span(node.left)[1]
            right_start = text.span(node.right)[0]
            between = text.data[left_end:right_start].decode()
            old, new = ("&", "|") if isinstance(node.op, ast.BitAnd) else ("|", "&")
            if between.count(old) == 1:  # the operator, not a `&` in a comment
                add(
                    "swap",
                    text.line_at(left_end + between.index(old)),
                    f"`{old}` -> `{new}`",
                    (left_end, right_start),
                    between.replace(old, new),
                )
        if isinstance(node, ast.Call) and _called_name(node) in _SWAPPED_CALLS:
            name = _called_name(node)
            span = text.span(node.func)
            head = text.of(node.func)
            add(
                "swap",
                node.lineno,
                f"`{name}(...)` -> `{_SWAPPED_CALLS[name]}(...)`",  # type: ignore[index]
                span,
                head[: -len(name)] + _SWAPPED_CALLS[name],  # type: ignore[arg-type,index]
            )
        if isinstance(node, ast.BoolOp) and id(node) in filter_arguments:
            old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:], strict=False):
                left_end, right_start = text.span(left)[1], text.span(right)[0]
                between = text.data[left_end:right_start].decode()
                add(
                    "swap",
                    text.line_at(right_start),
                    f"`{old}` -> `{new}` in a filter",
                    (left_end, right_start),
                    between.replace(old, new, 1),
                )
    return sorted(found, key=lambda mutant: (mutant.line, mutant.operator, mutant.description))
