"""`drift-pipeline audit checkpoint | verify | public-key | export --proofs | verify-export`: the tenant's
offline check, one line and exit 1 for each attack, exit 2 for usage mistakes, and exports that a kill
mid-write never leaves half-written."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from drift_pipeline.persistence.db import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(home, run_cli):
    return run_cli


@pytest.fixture
def logged(cli):
    """Two tenants' entries interleaved, a signed checkpoint, acme's bundle and the public key."""
    cli("registry", "add", "openai", "m-1")
    cli("registry", "add", "openai", "m-2")
    for tenant in ("acme", "globex"):
        cli("tenants", "add", tenant)
    for model in ("m-1", "m-2"):
        for tenant in ("acme", "globex"):
            assert cli("pin", tenant, "support", model, "--threshold", "0.05")[0] == 0
    return cli


def one_line_error(result, code: int = 1) -> str:
    rc, _, err = result
    assert rc == code and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_checkpoint_verify_and_an_offline_tenant_check(logged, tmp_path):
    code, out, _ = logged("audit", "checkpoint")
    assert code == 0 and "tree size 8" in out and "audit/checkpoints/" in out
    code, out, _ = logged("audit", "verify")
    assert code == 0 and "8 entries, hash chain intact" in out and "1 signed checkpoints consistent" in out
    assert logged("audit", "public-key", "--output", str(tmp_path / "pub.pem"))[0] == 0
    assert logged("audit", "public-key")[1] == (tmp_path / "pub.pem").read_text()
    bundle = tmp_path / "acme.json"
    assert logged("audit", "export", "--tenant", "acme", "--proofs", "--output", str(bundle))[0] == 0
    code, out, _ = logged("audit", "verify-export", str(bundle), "--public-key", str(tmp_path / "pub.pem"))
    assert code == 0 and "3 entries of tenant 'acme'" in out  # tenant.add + two pins


def test_verify_names_the_checkpoint_a_cut_tail_contradicts(logged, dba):
    logged("audit", "checkpoint")
    store = Store.open()
    with dba(store), store.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq > 5"))
    err = one_line_error(logged("audit", "verify"))
    assert "checkpoint #1 (checkpoint of tree size 8" in err and "covers 8 entries but the log has 5" in err
    assert "refusing to sign" in one_line_error(logged("audit", "checkpoint"))


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        ("omit", "tenant entry 2 was omitted"),
        ("edit", "was edited"),
        ("wrong-key", "not a known public key"),
        ("not-json", "is not a JSON audit proof bundle"),
        ("no-file", "no bundle file"),
    ],
)
def test_verify_export_refuses_each_attack_in_one_line(logged, tmp_path, attack, message):
    bundle, key = tmp_path / "acme.json", tmp_path / "pub.pem"
    logged("audit", "export", "--tenant", "acme", "--proofs", "--output", str(bundle))
    logged("audit", "public-key", "--output", str(key))
    data = json.loads(bundle.read_text())
    if attack == "omit":
        del data["entries"][1]
    elif attack == "edit":
        data["entries"][2]["actor"] = "someone else"
    elif attack == "wrong-key":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from drift_pipeline.persistence.checkpoints import public_pem

        key.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    bundle.write_text("{not json" if attack == "not-json" else json.dumps(data))
    if attack == "no-file":
        bundle.unlink()
    err = one_line_error(logged("audit", "verify-export", str(bundle), "--public-key", str(key)))
    assert message in err


def test_usage_mistakes_exit_2(logged, tmp_path):
    assert "--proofs needs --tenant" in one_line_error(logged("audit", "export", "--proofs"), 2)
    assert "Missing option '--public-key'" in one_line_error(logged("audit", "verify-export", "x.json"), 2)
    assert "cannot read public key" in one_line_error(
        logged("audit", "verify", "--public-key", str(tmp_path / "missing.pem"))
    )


_KILL_MID_WRITE = """
import os, signal, sys

# Die at the first fsync: the export's bytes are all written, to a temporary name, not yet renamed.
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
sys.argv = ["drift-pipeline", *sys.argv[1:]]
from drift_pipeline.cli.app import main
main()
"""


@pytest.mark.parametrize("fmt", ["csv", "parquet", "proofs"])
def test_an_export_killed_mid_write_leaves_no_partial_file(logged, home, tmp_path, fmt):
    logged("audit", "checkpoint")  # so that --proofs has nothing else to write first
    out = tmp_path / f"export.{fmt}"
    out.write_text("the previous export\n")
    args = ["--tenant", "acme", "--proofs"] if fmt == "proofs" else ["--format", fmt]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DRIFT_PIPELINE_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_MID_WRITE, "audit", "export", *args, "--output", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert out.read_text() == "the previous export\n"  # the old file, whole; never the half-written one
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # the debris is a temp name
