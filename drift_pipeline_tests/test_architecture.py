"""The tree is the map: pillars import downward only, Dagster stays in the wiring, tests stand alone.

Imports are read with `ast` (module level, inside functions and under TYPE_CHECKING alike), so a lazy
import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "drift_pipeline"
TESTS = ROOT / "drift_pipeline_tests"

# What each pillar may import besides itself and the top-level base modules (config, errors, retry, ...).
ALLOWED: dict[str, set[str]] = {
    "persistence": set(),
    "versioning": {"persistence"},
    "traffic": {"persistence", "versioning"},
    "alerts": {"persistence", "versioning"},
    "detection": {"persistence", "versioning", "traffic", "alerts"},
    "migration": {"persistence", "versioning", "traffic", "alerts", "detection"},
}
# The documented cross-edges: (importing module, imported pillar). Each is explained where it happens.
EXCEPTIONS = {("drift_pipeline.versioning.runtime", "migration")}
WIRING = {"defs", "cli", "definitions"}
MAX_LINES = 400


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "alembic" not in p.parts)


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports, absolute, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _pillar(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "drift_pipeline" else None


def _edges() -> list[tuple[str, str]]:
    return [(_dotted(p), name) for p in _modules(PACKAGE) for name in _imports(p)]


def test_pillars_import_downward_only() -> None:
    upward = []
    for module, name in _edges():
        source, target = _pillar(module), _pillar(name)
        if source not in ALLOWED or target not in ALLOWED or source == target:
            continue
        if target not in ALLOWED[source] and (module, target) not in EXCEPTIONS:
            upward.append(f"{module} imports {name}")
    assert not upward, "pillars must import downward only:\n" + "\n".join(sorted(set(upward)))


def test_the_core_never_imports_the_wiring() -> None:
    wrong = [
        f"{module} imports {name}"
        for module, name in _edges()
        if _pillar(module) in ALLOWED and _pillar(name) in WIRING
    ]
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_dagster_is_imported_only_in_the_wiring() -> None:
    wrong = [
        f"{module} imports {name}"
        for module, name in _edges()
        if name.split(".")[0].startswith("dagster") and _pillar(module) not in {"defs", "definitions"}
    ]
    assert not wrong, "Dagster belongs in drift_pipeline/defs and definitions.py:\n" + "\n".join(sorted(set(wrong)))


def test_documented_exceptions_are_still_needed() -> None:
    edges = {(module, _pillar(name)) for module, name in _edges()}
    assert edges >= EXCEPTIONS, f"stale exception: {EXCEPTIONS - edges}"


def test_no_test_module_imports_another() -> None:
    wrong = [
        f"{_dotted(p)} imports {name}"
        for p in _modules(TESTS)
        for name in _imports(p)
        if re.match(r"drift_pipeline_tests\.(.+\.)?(test_\w+|conftest)$", name)
    ]
    assert not wrong, "shared helpers belong in drift_pipeline_tests/plugins:\n" + "\n".join(wrong)


def test_every_pillar_says_what_it_owns_and_may_import() -> None:
    for pillar in ALLOWED:
        doc = ast.get_docstring(ast.parse((PACKAGE / pillar / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"drift_pipeline/{pillar}/__init__.py needs a docstring naming its imports"


def test_modules_stay_small() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules(PACKAGE)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these along their seams (max {MAX_LINES} lines): {long}"


@pytest.mark.parametrize(
    "line",
    [
        line.strip()
        for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*from drift_pipeline[\w.]* import \w", line)
    ],
)
def test_the_readme_imports_exist(line: str) -> None:
    """The public surface the README shows the platform's request path stays importable."""
    match = re.match(r"from (\S+) import (.+)", line)
    assert match is not None
    module = importlib.import_module(match.group(1))
    for name in (n.strip().split(" as ")[0] for n in match.group(2).split(",")):
        assert hasattr(module, name) or importlib.util.find_spec(f"{match.group(1)}.{name}"), f"{line}: no {name}"
