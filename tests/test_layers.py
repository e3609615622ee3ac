"""The layout's import rules, read from the source: lower layers know nothing of higher ones,
`fetchers` knows nothing of `compare`, and only a backend module imports its store's SDK."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]

# compare's layers, lowest first; a module may import its own layer and the ones below it.
LAYERS = [
    ("compare.model", "compare.regions", "compare.formats"),
    ("compare.inputs",),
    ("compare.classify",),
    ("compare.imaging",),
    ("compare.engine",),
    ("compare.output",),
    ("compare.builds", "compare.demo"),
    ("compare.cli",),
]
SDKS = {
    "boto3": "fetchers.backends.s3",
    "botocore": "fetchers.backends.s3",
    "google": "fetchers.backends.gcs",
    "requests": "fetchers.backends.gcs",
    "objectstore_client": "fetchers.backends.objectstore",
    "zstandard": "fetchers.backends.objectstore",
    "multipart": "fetchers.formdata",
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("compare", "fetchers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join(parts), path))
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Absolute names of every module ``module`` imports (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def _layer(name: str) -> int | None:
    for index, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return index
    return None


MODULES = _modules()


def test_every_module_is_in_a_layer():
    assert len(MODULES) > 20
    unplaced = [m for m, _ in MODULES if m.startswith("compare.") and _layer(m) is None]
    assert unplaced == []


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_follow_the_layers(module: str, path: Path):
    imported = _imports(module, path)
    if module.startswith("fetchers"):
        assert not [n for n in imported if n.split(".")[0] == "compare"]
    own = _layer(module)
    if own is not None:
        higher = [n for n in imported if (layer := _layer(n)) is not None and layer > own]
        assert higher == [], f"{module} imports a higher layer"
    for name in imported:
        owner = SDKS.get(name.split(".")[0])
        assert owner is None or owner == module, f"{module} imports {name}, which only {owner} may"
    assert not any(n.split(".")[0] in ("tests", "testing") for n in imported)


def _graph() -> dict[str, set[str]]:
    """Which of our modules each of our modules imports (anywhere in it, functions included)."""
    names = {module for module, _ in MODULES}
    graph: dict[str, set[str]] = {}
    for module, path in MODULES:
        targets = set()
        for name in _imports(module, path):
            while name and name not in names:  # `pkg.mod.Name` -> `pkg.mod`
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)  # a module may use its own package's __init__
        graph[module] = targets
    return graph


def test_no_module_imports_itself_through_others():
    graph = _graph()
    assert sum(map(len, graph.values())) > 50
    cycles = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
