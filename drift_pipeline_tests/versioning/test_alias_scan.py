"""The alias scanner: every model call by alias found with file and line; exact versions pass; CI exit code."""

from __future__ import annotations

import json
import textwrap

import pytest
import typer
from typer.testing import CliRunner

from drift_pipeline.cli import migrate
from drift_pipeline.versioning import alias_scan, registry

CODE = """
import litellm
from litellm import completion
from openai import OpenAI
import anthropic

MODEL = "gpt-4o"
PINNED = "gpt-4o-2024-08-06"

client = OpenAI()
litellm.completion(model="gpt-4", messages=[])
completion("openai/claude-3-5-sonnet-latest", [])
client.chat.completions.create(model=MODEL, messages=[])
client.chat.completions.create(model=PINNED, messages=[])
OpenAI().responses.create(model="o3-mini", input="hi")
anthropic.Anthropic().messages.create(model="claude-3-5-sonnet-20241022", max_tokens=5, messages=[])
await litellm.acompletion(model="support-model", messages=[])
litellm.completion(model="vertex_ai/gemini-1.0-pro@001", messages=[])
litellm.completion(model="gpt-4-0613", messages=[])
litellm.completion(model=choose_model(), messages=[])
Agent(model="gpt-4o-mini")
print("gpt-4o")
"""


@pytest.fixture
def codebase(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "calls.py").write_text(textwrap.dedent(CODE))
    (tmp_path / "app" / "broken.py").write_text("def f(:\n")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "vendored.py").write_text('litellm.completion(model="gpt-4")\n')
    return tmp_path


def test_finds_aliases_with_file_and_line(codebase):
    result = alias_scan.scan(codebase, registry_aliases={"support-model": "smollm2-135m-instruct"})
    found = [(f.line, f.model, f.kind, f.resolves_to) for f in result.findings]
    assert found == [
        (11, "gpt-4", "known moving alias", None),
        (12, "openai/claude-3-5-sonnet-latest", "latest alias", None),
        (13, "gpt-4o", "known moving alias", None),  # through the MODEL constant
        (15, "o3-mini", "known moving alias", None),
        (17, "support-model", "registered alias", "smollm2-135m-instruct"),
        (21, "gpt-4o-mini", "known moving alias", None),  # any model= keyword counts
    ]
    assert {f.path for f in result.findings} == {str(codebase / "app" / "calls.py")}
    assert result.findings[0].call == "litellm.completion"
    assert result.files_scanned == 1 and result.model_calls == 11
    assert result.dynamic == [{"path": str(codebase / "app" / "calls.py"), "line": 20, "call": "litellm.completion"}]
    assert result.skipped[0]["path"].endswith("broken.py") and "SyntaxError" in result.skipped[0]["reason"]


@pytest.mark.parametrize(
    "model",
    ["gpt-4o-2024-08-06", "gpt-4-0613", "claude-3-5-sonnet-20241022", "gemini-1.5-pro-002", "gemini-1.0-pro@001",
     "bedrock/anthropic.claude-3-sonnet-20240229-v1:0", "my-finetune"],
)  # fmt: skip
def test_dated_and_unknown_ids_are_not_aliases(model):
    assert alias_scan.classify(model) is None


def test_a_registered_exact_version_wins_over_the_builtin_list():
    assert alias_scan.classify("gpt-4") == ("known moving alias", None)
    assert alias_scan.classify("gpt-4", exact_versions={"gpt-4"}) is None


def _app() -> typer.Typer:
    app = typer.Typer()
    migrate.register(app)
    return app


def test_cli_json_and_exit_code(codebase, home, monkeypatch):
    from drift_pipeline.persistence.db import Store

    store = Store.open()
    registry.add_version(store, "offline", "smollm2-135m-instruct", aliases=["support-model"], actor="t")
    result = CliRunner().invoke(_app(), ["scan-aliases", str(codebase / "app"), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert ("support-model", "smollm2-135m-instruct") in {(f["model"], f["resolves_to"]) for f in data["findings"]}
    clean = codebase / "clean.py"
    clean.write_text('litellm.completion(model="gpt-4o-2024-08-06", messages=[])\n')
    ok = CliRunner().invoke(_app(), ["scan-aliases", str(clean)])
    assert ok.exit_code == 0 and "0 alias call(s) in 1 file(s)" in ok.stdout
