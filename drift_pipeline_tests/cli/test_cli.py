"""The CLI: every command has --help; user mistakes print one line and exit non-zero, never a traceback."""

import json

import pytest

from drift_pipeline.cli.app import app, main


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["drift-pipeline", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(home, monkeypatch, capsys):
    return lambda *args: run(monkeypatch, capsys, *args)


def test_foundation_workflow(cli, tmp_path):
    assert cli("init")[0] == 0
    assert cli("registry", "add", "openai", "gpt-4-0314", "--alias", "gpt-4", "--release-date", "2023-03-14")[0] == 0
    assert cli("registry", "add", "openai", "gpt-4-0613")[0] == 0
    assert cli("registry", "alias", "gpt-4", "gpt-4-0613")[0] == 0
    assert cli("tenants", "add", "acme", "--contact", "ops@acme.io", "--regulated")[0] == 0
    agent = tmp_path / "agent.yaml"
    agent.write_text("system_prompt: You answer refunds.\nworkflow_types: [refund]\n")
    assert cli("pin", "acme", "support", "gpt-4-0613", "--threshold", "0.03", "--config", str(agent))[0] == 0

    code, out, _ = cli("resolve", "acme", "support")
    assert code == 0 and json.loads(out)["model_id"] == "gpt-4-0613"
    code, out, _ = cli("manifest", "show", "acme", "support", "--json")
    assert json.loads(out)["config"]["system_prompt"] == "You answer refunds."
    code, out, _ = cli("registry", "list", "--json")
    assert {v["model_id"]: v["pinned_by"] for v in json.loads(out)} == {"gpt-4-0314": 0, "gpt-4-0613": 1}
    assert cli("registry", "deprecate", "gpt-4-0314", "--sunset", "2030-01-01", "--successor", "gpt-4-0613")[0] == 0
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "intact" in out
    code, out, _ = cli("audit", "export", "--format", "jsonl", "--tenant", "acme")
    assert code == 0 and {json.loads(line)["tenant_id"] for line in out.splitlines()} == {"acme"}
    out_file = tmp_path / "a.parquet"
    assert (
        cli("audit", "export", "--format", "parquet", "--output", str(out_file))[0] == 0 and out_file.stat().st_size > 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pin", "acme", "support", "gpt-4"), "is an alias (it resolves to 'gpt-4-0314' today)"),
        (("pin", "acme", "support", "nope"), "unknown model 'nope'"),
        (("pin", "nobody", "support", "gpt-4-0314"), "unknown tenant 'nobody'"),
        (("pin", "acme", "support", "gpt-4-0314", "--threshold", "2"), "out of range"),
        (("resolve", "acme", "ghost"), "no manifest for agent 'ghost'"),
        (("registry", "deprecate", "gpt-4-0314", "--sunset", "soon"), "is not a date"),
        (("audit", "export", "--format", "xml"), "unknown export format"),
        (("tenants", "add", "acme"), "already exists"),
    ],
)
def test_user_mistakes_get_one_line(cli, args, message):
    cli("registry", "add", "openai", "gpt-4-0314", "--alias", "gpt-4")
    cli("tenants", "add", "acme")
    code, _, err = cli(*args)
    assert code == 1
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-command",), "No such command 'no-such-command'"),
        (("plan", "--threshold", "abc"), "Invalid value for '--threshold'"),
        (("plan",), "Missing option '--threshold'"),
        (("pin", "acme"), "Missing argument"),
        (("manifest", "show"), "Missing argument"),
        (("audit", "export", "--since"), "requires an argument"),
        (("plan", "--threshold", "0.05", "--bogus"), "No such option: --bogus"),
    ],
)
def test_usage_mistakes_get_one_line_and_exit_2(cli, args, message):
    code, _, err = cli(*args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_file_is_one_line(cli, tmp_path):
    cli("registry", "add", "openai", "m-1")
    cli("tenants", "add", "acme")
    bad = tmp_path / "agent.yaml"
    bad.write_text("tools: [{type: function, function: {name: f, parameters: {type: 12}}}]")
    code, _, err = cli("pin", "acme", "support", "m-1", "--config", str(bad))
    assert code == 1 and "not a valid JSON Schema" in err and len(err.strip().splitlines()) == 1


def test_tampered_audit_log_fails_verify(cli, dba):
    cli("registry", "add", "openai", "m-1")
    cli("registry", "add", "openai", "m-2")
    from sqlalchemy import text

    from drift_pipeline.persistence.db import Store

    store = Store.open()
    with dba(store), store.transaction() as s:
        s.execute(text("UPDATE audit_log SET reason = 'edited' WHERE seq = 1"))
    code, _, err = cli("audit", "verify")
    assert code == 1 and "audit entry 1 does not match" in err


def _commands(group, prefix=()):
    import typer.main

    click_cmd = typer.main.get_command(group)
    stack = [(prefix, click_cmd)]
    while stack:
        path, cmd = stack.pop()
        yield path
        if hasattr(cmd, "list_commands"):  # through the group's API: the top level loads its modules lazily
            ctx = typer.Context(cmd)
            stack.extend(((*path, name), cmd.get_command(ctx, name)) for name in cmd.list_commands(ctx))


@pytest.mark.parametrize("path", sorted(_commands(app)), ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(cli, path):
    code, out, _ = cli(*path, "--help")
    assert code == 0 and "Usage" in out and len(out.splitlines()) > 3


@pytest.mark.parametrize("columns", ["40", "300"])
def test_output_to_a_pipe_does_not_depend_on_the_terminal_width(cli, monkeypatch, columns):
    """A narrow COLUMNS once wrapped "2 called" over two lines and broke a test: piped output is never wrapped."""
    monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = cli("plan", "--threshold", "0.05", "--threshold", "0.02")
    assert code == 0
    assert "pairs needed to show equivalence (alpha 0.01, changed share 0)" in out
    rows = [line for line in out.splitlines() if "0.02" in line]
    assert len(rows) == 1 and "268" in rows[0] and "344" in rows[0]
