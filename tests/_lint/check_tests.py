"""The test-lint: an AST pass over ``tests/`` refusing the habits that let a test pass by luck or by clock.

Run by ``make lint`` (``python tests/_lint/check_tests.py tests``); prints ``file:line: message`` for
each finding and exits 1 when there is any. It refuses:

- a clock (``time.monotonic()``, ``time.time()``, ``time.perf_counter()``, or a name computed from
  one) inside an ``assert``: speed is measured by ``make bench``, a hang is caught by pytest-timeout;
- ``time.sleep`` anywhere but the wait helper ``tests/_wait.py``: wait for a condition instead;
- ``pytest.skip``, ``pytest.importorskip``, ``pytest.mark.skip`` and ``pytest.mark.skipif`` unless a
  platform condition (``sys.platform``, ``platform.system()``, ``platform.machine()``) decides them: on
  a supported machine a missing tool is an install failure, not a skip;
- ``pytest.xfail`` and ``pytest.mark.xfail`` without ``strict=True``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "check_file", "check_source", "main"]

WAIT_HELPER = "_wait.py"
"""The only file allowed to sleep (it is the wait helper)."""

CLOCKS = {"monotonic", "time", "perf_counter", "monotonic_ns", "time_ns", "perf_counter_ns"}
"""Functions of ``time`` that read a clock."""

PLATFORM_ATTRS = {("sys", "platform"), ("platform", "system"), ("platform", "machine")}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of attributes on a name, else ""."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


class _Imports:
    """What the module's ``from time import …`` / ``from pytest import …`` lines bind, by local name."""

    def __init__(self, tree: ast.AST) -> None:
        self.names: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in {"time", "pytest", "sys", "platform"}:
                for alias in node.names:
                    self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.names[alias.asname] = alias.name

    def qualified(self, node: ast.AST) -> str:
        dotted = _dotted(node)
        if not dotted:
            return ""
        head, _, rest = dotted.partition(".")
        head = self.names.get(head, head)
        return f"{head}.{rest}" if rest else head


def _is_clock_call(node: ast.AST, imports: _Imports) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = imports.qualified(node.func)
    return name.startswith("time.") and name.split(".", 1)[1] in CLOCKS


def _mentions_platform(node: ast.AST, imports: _Imports) -> bool:
    for sub in ast.walk(node):
        name = imports.qualified(sub)
        if any(name == f"{mod}.{attr}" for mod, attr in PLATFORM_ATTRS):
            return True
    return False


def _scopes(tree: ast.Module) -> Iterator[ast.AST]:
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield node


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``scope`` that are not inside a nested function."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _clock_names(scope: ast.AST, imports: _Imports) -> set[str]:
    """Names a scope computes from a clock reading, directly or through another such name."""
    tainted: set[str] = set()
    assigns: list[tuple[list[ast.expr], ast.expr]] = []
    for node in _own_nodes(scope):
        if isinstance(node, ast.Assign):
            assigns.append((node.targets, node.value))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
            assigns.append(([node.target], node.value))
        elif isinstance(node, ast.NamedExpr):
            assigns.append(([node.target], node.value))
    changed = True
    while changed:
        changed = False
        for targets, value in assigns:
            if not _tainted(value, imports, tainted):
                continue
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name) and sub.id not in tainted:
                        tainted.add(sub.id)
                        changed = True
    return tainted


def _tainted(node: ast.AST, imports: _Imports, names: set[str]) -> bool:
    return any(
        _is_clock_call(sub, imports) or (isinstance(sub, ast.Name) and sub.id in names)
        for sub in ast.walk(node)
    )


def _keyword_true(call: ast.Call, name: str) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords
    )


def check_source(source: str, path: str) -> list[Finding]:
    """Every finding in one file's text (``path`` names it in the messages and decides the sleep rule)."""
    tree = ast.parse(source, filename=path)
    imports = _Imports(tree)
    findings: list[Finding] = []

    def add(node: ast.AST, message: str) -> None:
        findings.append(Finding(path, getattr(node, "lineno", 0), message))

    for scope in _scopes(tree):
        clock = _clock_names(scope, imports)
        for node in _own_nodes(scope):
            if isinstance(node, ast.Assert) and _tainted(node.test, imports, clock):
                add(node, "a clock in an assertion: measure speed in `make bench`, rely on pytest-timeout")

    # Conditions of the `if` statements enclosing each node, to tell a platform skip from another.
    conditions: dict[ast.AST, list[ast.expr]] = {}

    def visit(node: ast.AST, enclosing: list[ast.expr]) -> None:
        conditions[node] = enclosing
        for child in ast.iter_child_nodes(node):
            inner = enclosing
            if isinstance(node, ast.If | ast.IfExp | ast.While) and child is not node.test:
                inner = [*enclosing, node.test]
            visit(child, inner)

    visit(tree, [])
    sleep_allowed = Path(path).name == WAIT_HELPER
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = imports.qualified(node.func)
            if name == "time.sleep" and not sleep_allowed:
                add(node, "time.sleep outside the wait helper: use wait_for(condition, timeout, what)")
            elif name in {"pytest.skip", "pytest.importorskip"}:
                if not any(_mentions_platform(c, imports) for c in conditions[node]):
                    add(node, f"{name} without a platform condition (sys.platform / platform.machine())")
            elif name == "pytest.mark.skipif":
                condition = node.args[0] if node.args else None
                if condition is None or not _mentions_platform(condition, imports):
                    add(node, "skipif without a platform condition (sys.platform / platform.machine())")
            elif name == "pytest.mark.skip":
                add(node, "pytest.mark.skip: a skipped test hides a failure; fix it or delete it")
            elif name == "pytest.mark.xfail":
                if not _keyword_true(node, "strict"):
                    add(node, "xfail without strict=True")
            elif name == "pytest.xfail":
                add(node, "pytest.xfail (never strict): use pytest.mark.xfail(strict=True)")
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in called:
            name = imports.qualified(node)
            if name in {"pytest.mark.skip", "pytest.mark.skipif", "pytest.mark.xfail"}:
                add(node, f"bare {name}: give it a platform condition / strict=True")
    return sorted(findings, key=lambda f: f.line)


def check_file(path: Path) -> list[Finding]:
    return check_source(path.read_text(encoding="utf-8"), str(path))


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("tests")]
    files = sorted(p for root in roots for p in ([root] if root.is_file() else root.rglob("*.py")))
    findings = [f for path in files for f in check_file(path)]
    for finding in findings:
        print(finding)
    if findings:
        print(f"test-lint: {len(findings)} finding(s) in {len({f.path for f in findings})} file(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
