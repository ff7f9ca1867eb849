"""The file tree shows the architecture, and these tests keep it so.

Layers, from the top: the package's ``__init__`` (public names) → the surfaces ``web/`` and
``cli/`` → ``extension`` (``init_app`` and the Python API) → ``core/`` (the decisions, no
vendor named) → ``senders/`` and ``stores/`` (contracts, registries, generic parts) → the
vendor folders (``aliyun/``), which implement the sender contract → the leaves (``config``,
``errors``, ``messages``, ``phones``, ``events``, ...). A module imports only from layers
below its own, or from its own folder; nothing points back up, and there is no import
cycle. Imports inside functions count (they are real edges at run time); imports under
``if TYPE_CHECKING:`` do not (they are never executed: annotations only).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flask_smscode"
NAME = "flask_smscode"

LEAVES = {
    "_version",
    "codes",
    "config",
    "errors",
    "events",
    "messages",
    "metrics",
    "phones",
    "signals",
    "tokens",
}
# Rank of each top-level part: a module may import a lower rank, or its own part.
RANKS = {
    "leaf": 0,
    "stores": 1,
    "senders": 1,
    "aliyun": 2,  # a vendor implements the sender contract: below senders/ is wrong
    "tencent": 2,
    "core": 2,
    "extension": 3,
    "web": 4,
    "cli": 4,
    "": 5,  # flask_smscode/__init__.py: re-exports everything public
}
# Parts of one rank that must not import each other.
SEPARATE = {("core", "aliyun"), ("aliyun", "core"), ("web", "cli"), ("cli", "web")}
# Vendors neither import the core nor each other (a shared rule lives in senders/).
SEPARATE |= {("core", "tencent"), ("tencent", "core"), ("aliyun", "tencent"), ("tencent", "aliyun")}
# Vendor folders: the generic parts must never name them.
VENDORS = {"aliyun", "tencent"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part(module: str) -> str:
    """The top-level part of ``module``: a folder, ``extension``, ``leaf`` or ``""``."""
    rest = module.split(".")[1:]
    if not rest:
        return ""
    if rest[0] in LEAVES:
        return "leaf"
    return rest[0]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return skipped


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every package module ``module`` imports at run time, with the line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            text = node.args[0].value
            targets = [".".join(package) + text if text.startswith(".") else text]
        for target in targets:
            if target in known and target != module:
                yield target, node.lineno


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: {t for t, _ in imports_of(name, path, known)} for name, path in found.items()}


def test_nothing_points_back_up() -> None:
    found = modules()
    wrong = []
    for name, path in found.items():
        here = part(name)
        for target, line in imports_of(name, path, set(found)):
            there = part(target)
            if there == here or target == NAME:
                if target == NAME and name != NAME:
                    wrong.append(f"{name}:{line} imports the package root")
                continue
            if (here, there) in SEPARATE or RANKS[there] >= RANKS[here]:
                wrong.append(f"{name}:{line} -> {target} ({here or 'root'} -> {there})")
    assert not wrong, "\n".join(wrong)


def test_the_generic_parts_never_name_a_vendor() -> None:
    """core/, stores/, senders/, extension and the leaves import no vendor folder, and
    their code names no vendor module either (not even as a string to import)."""
    found = modules()
    generic = [n for n in found if part(n) in {"core", "stores", "senders", "extension", "leaf"}]
    assert generic
    offending = []
    for name in generic:
        text = found[name].read_text(encoding="utf-8")
        for vendor in VENDORS:
            if re.search(rf"\b{NAME}\.{vendor}\b|from \.+{vendor}\b", text):
                offending.append(f"{name} names {NAME}.{vendor}")
    assert not offending, offending


def test_no_import_cycle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in edges:
        if node not in index:
            visit(node)
    assert not cycles, cycles


def test_the_check_sees_function_level_imports() -> None:
    """A guard for the guard: the graph must hold an import made inside a function."""
    edges = graph()
    # The doctor command imports its checks when it runs (cli/doctor.py imports nothing
    # lazily, but the Alibaba sender imports its checks inside check()).
    assert "flask_smscode.aliyun.checks" in edges["flask_smscode.aliyun.sender"]


def test_the_removed_shims_stay_removed() -> None:
    for old in ("client.py", "receipts.py", "senders/aliyun.py", "service.py", "blueprint.py"):
        assert not (PACKAGE / old).exists(), old


def test_the_registries_find_the_built_in_kinds() -> None:
    """The built-in senders and stores are declared as entry points like anyone else's."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    points = declared["project"]["entry-points"]
    assert {"console", "aliyun", "tencent", "pnvs"} <= set(points["flask_smscode.senders"])
    assert {"memory", "redis", "rediss", "redis+cluster", "redis+sentinel"} <= set(
        points["flask_smscode.stores"]
    )
    installed = {ep.name for ep in entry_points(group="flask_smscode.senders")}
    assert {"console", "aliyun", "tencent"} <= installed, "reinstall the package: pip install -e ."


def test_few_type_ignores_each_with_a_reason() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "type: ignore" in line:
                found.append((path.relative_to(ROOT), number, line))
    assert len(found) <= 5, found
    for where, number, line in found:
        assert re.search(r"type: ignore\[[a-z-]+\]", line), (where, number)
        reason = line.split("type: ignore", 1)[1]
        assert "#" in reason, f"{where}:{number}: say why next to the ignore"


@pytest.mark.parametrize("folder", ["core", "web", "cli", "senders", "stores", "aliyun", "tencent"])
def test_each_room_says_what_it_is(folder: str) -> None:
    """Every module has a docstring: the tree is read by people before it is run."""
    for path in (PACKAGE / folder).glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if path.name == "__init__.py" and not tree.body:
            continue
        assert ast.get_docstring(tree), path
