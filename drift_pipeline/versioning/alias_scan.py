"""Find every place a Python codebase calls a model by a moving alias instead of an exact version.

Parses each file with `ast` (nothing is imported or run) and looks at model calls: litellm
`completion`/`acompletion`/`text_completion` (keyword or first positional argument), OpenAI
`chat.completions.create` / `responses.create`, Anthropic `messages.create`, and any other call with a
`model=` keyword. A string model (or a name bound once to a string in the same file) is an alias when
the registry knows it as one, when it ends in `-latest`, or when it is a well-known moving name; ids with a
date or version suffix (`-2024-08-06`, `-0613`, `-20241022`, `@001`, `-v1:0`) are exact.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drift_pipeline.errors import NotFoundError
from drift_pipeline.versioning.model_ids import LATEST, bare, is_snapshot

# Names providers move to a new snapshot without notice (checked after stripping a `provider/` prefix).
KNOWN_ALIASES = frozenset(
    {
        "gpt-3.5-turbo", "gpt-3.5-turbo-16k", "gpt-4", "gpt-4-32k", "gpt-4-turbo", "gpt-4-turbo-preview",
        "gpt-4-vision-preview", "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
        "gpt-4.5-preview", "gpt-5", "gpt-5-mini", "gpt-5-nano", "chatgpt-4o-latest", "o1", "o1-mini",
        "o1-preview", "o3", "o3-mini", "o4-mini", "claude-2", "claude-instant-1", "claude-3-5-sonnet-latest",
        "claude-3-5-haiku-latest", "claude-3-7-sonnet-latest", "claude-3-opus-latest", "claude-sonnet-4-0",
        "claude-opus-4-0", "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-pro",
        "gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.0-flash", "gemini-2.5-pro", "gemini-2.5-flash",
        "mistral-large-latest", "mistral-small-latest", "command-r", "command-r-plus", "llama3", "llama3.1",
    }
)  # fmt: skip
LITELLM_CALLS = ("completion", "acompletion", "text_completion", "atext_completion")
CLIENT_CALLS = ("chat.completions.create", "responses.create", "messages.create", "completions.create")
MAX_FILE_BYTES = 5_000_000  # generated or vendored blobs beyond this are skipped, not parsed
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache", "site-packages"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    call: str
    model: str
    kind: str  # "registered alias" | "latest alias" | "known moving alias"
    resolves_to: str | None = None


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    model_calls: int = 0
    dynamic: list[dict[str, Any]] = field(default_factory=list)  # model not a literal: cannot judge
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable or unparsable files

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [asdict(f) for f in self.findings],
            "files_scanned": self.files_scanned,
            "model_calls": self.model_calls,
            "dynamic": self.dynamic,
            "skipped": self.skipped,
        }


def classify(
    model: str,
    registry_aliases: Mapping[str, str] | None = None,
    exact_versions: set[str] | frozenset[str] = frozenset(),
) -> tuple[str, str | None] | None:
    """(kind, what it resolves to) when `model` is an alias, None when it is (or looks) exact."""
    aliases = registry_aliases or {}
    for name in dict.fromkeys((model, bare(model))):
        if name in exact_versions:
            return None
        if name in aliases:
            return "registered alias", aliases[name]
    short = bare(model)
    if short.endswith(LATEST):
        return "latest alias", None
    if is_snapshot(short):
        return None
    if short in KNOWN_ALIASES:
        return "known moving alias", None
    return None


def scan(
    root: Path,
    *,
    registry_aliases: Mapping[str, str] | None = None,
    exact_versions: set[str] | frozenset[str] = frozenset(),
) -> ScanResult:
    """Scan a file or a directory tree of `.py` files."""
    if not root.exists():
        raise NotFoundError(f"no such file or directory: {root}")
    result = ScanResult()
    for path in _python_files(root):
        try:
            _scan_tree(_parse(path), str(path), result, registry_aliases or {}, exact_versions)
            result.files_scanned += 1
        # One pathological file (nested 100k deep, huge, not Python) is reported and skipped: it must not
        # hide the findings in every other file from a CI gate.
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
            result.skipped.append({"path": str(path), "reason": reason})
    result.findings.sort(key=lambda f: (f.path, f.line, f.column))
    return result


def _parse(path: Path) -> ast.AST:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"file of {size} bytes is over the {MAX_FILE_BYTES}-byte limit")
    return ast.parse(path.read_bytes(), filename=str(path))


def _python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*.py")):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            yield path


def _scan_tree(
    tree: ast.AST, path: str, result: ScanResult, aliases: Mapping[str, str], exact: set[str] | frozenset[str]
) -> None:
    constants = _string_constants(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        model_node = _model_argument(node, name)
        if model_node is None:
            continue
        result.model_calls += 1
        model = _string_value(model_node, constants)
        if model is None:
            result.dynamic.append({"path": path, "line": node.lineno, "call": name or "?"})
            continue
        verdict = classify(model, aliases, exact)
        if verdict is not None:
            kind, target = verdict
            result.findings.append(Finding(path, node.lineno, node.col_offset + 1, name or "?", model, kind, target))


def _model_argument(call: ast.Call, name: str | None) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == "model":
            return kw.value
    if name and call.args and _is_litellm_call(name):
        return call.args[0]
    return None


def _is_litellm_call(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last in LITELLM_CALLS and (name == last or name.startswith("litellm.") or name.endswith("router." + last))


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):  # e.g. OpenAI().chat.completions.create
        inner = _dotted(node.func)
        parts.append(f"{inner}()" if inner else "()")
    else:
        return ".".join(reversed(parts)) or None
    return ".".join(reversed(parts))


def _string_constants(tree: ast.AST) -> dict[str, str]:
    """Names bound exactly once, to a string literal, anywhere in the file (MODEL = "gpt-4o")."""
    seen: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    seen.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            seen.setdefault(node.target.id, []).append(node.value)
    return {
        name: values[0].value
        for name, values in seen.items()
        if len(values) == 1 and isinstance(values[0], ast.Constant) and isinstance(values[0].value, str)
    }


def _string_value(node: ast.expr, constants: Mapping[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None
