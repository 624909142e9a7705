"""The floors' arrows (docs: ``../shared/reference/architecture.md``), kept by a test.

``handlers → bot → {storage, providers} → bot.domain``: nothing in ``storage/`` or
``providers/`` imports ``bot/`` outside ``bot.domain``; ``bot.domain`` imports nothing of
IMAS; nothing in ``bot/`` imports ``handlers/``; no import cycle among IMAS modules. Every
import counts, including those inside functions (a deferred import is still an arrow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "storage", "providers")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imas_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found[module_name(path)] = path
    return found


MODULES = imas_modules()


def resolve(name: str) -> str | None:
    """The IMAS module ``name`` refers to (a module, or a package's ``__init__``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` names the submodule when there is one, else ``pkg``.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            if name.split(".")[0] not in PACKAGES:
                continue
            target = resolve(name)
            if target and target != module:
                targets.add(target)
    return targets


GRAPH = {module: imports_of(module) for module in MODULES}


def floor(module: str) -> str:
    if module == "bot.domain" or module.startswith("bot.domain."):
        return "domain"
    return module.split(".")[0]


ALLOWED = {
    "domain": {"domain"},
    "storage": {"storage", "domain"},
    "providers": {"providers", "domain"},
    "bot": {"bot", "domain", "storage", "providers"},
    "handlers": {"handlers", "bot", "domain", "storage", "providers"},
}


def test_modules_were_found() -> None:
    assert {"bot.domain.errors", "storage.models", "providers.base", "handlers.app"} <= set(GRAPH)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_arrows_point_down(module: str) -> None:
    wrong = sorted(t for t in GRAPH[module] if floor(t) not in ALLOWED[floor(module)])
    assert not wrong, f"{module} ({floor(module)}) must not import {wrong}"


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components: any component of two or more is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_outbox_kinds_are_declared_in_one_place() -> None:
    """No flow or step names an outbox kind with a bare string: bot/outbox_kinds.py does."""
    from bot.outbox_kinds import OutboxKind

    kinds = {f'"{kind.value}"' for kind in OutboxKind}
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith("bot.") or module == "bot.outbox_kinds":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ("kind=" in line or "kind ==" in line or "kind in" in line) and any(
                k in line for k in kinds
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
