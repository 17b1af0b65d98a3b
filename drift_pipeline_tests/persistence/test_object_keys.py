"""Object keys: nothing is read or written outside the storage root, whatever key a caller builds."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.objects import ObjectStore, object_key


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize(
    "key",
    [
        "../outside.json",
        "probes/../../outside.json",
        "probes/../../../outside/pwned-2024-01-01.json",
        "/../outside.json",
        "reports//x.json",
        "reports/./x.json",
        "reports/a\\..\\..\\x.json",
        "traffic/tenant=acme\n/x.json",
        "traffic/tenant=acme\x00/x.json",
    ],
)
def test_unsafe_keys_are_refused_before_any_io(key: str, tmp_path: Path) -> None:
    objects = ObjectStore(str(tmp_path / "home" / "data"), {})
    objects.write_bytes("probes/ok.json", b"{}")
    before = _tree(tmp_path)
    for call in (
        lambda: objects.write_bytes(key, b"pwned"),
        lambda: objects.read_bytes(key),
        lambda: objects.exists(key),
        lambda: objects.list_names(key),
        lambda: objects.uri(key),
    ):
        with pytest.raises(InvalidInputError, match="unsafe object key"):
            call()
    assert _tree(tmp_path) == before


def test_unsafe_keys_are_refused_on_s3_too(s3_objects: ObjectStore) -> None:
    with pytest.raises(InvalidInputError, match="unsafe object key"):
        s3_objects.write_bytes("probes/../../x.json", b"pwned")


def test_a_symlink_planted_under_the_root_cannot_lead_outside(tmp_path: Path) -> None:
    """An insider (or an earlier bug) links a tenant folder outside the root: writes through it are refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    objects = ObjectStore(str(tmp_path / "data"), {})
    (tmp_path / "data" / "traffic").mkdir(parents=True)
    os.symlink(outside, tmp_path / "data" / "traffic" / "tenant=acme")
    with pytest.raises(InvalidInputError, match="outside the storage root"):
        objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a"]}))
    assert list(outside.iterdir()) == []


def test_object_key_takes_one_plain_segment_per_argument() -> None:
    assert object_key("reports", "tenant=acme", "x.json") == "reports/tenant=acme/x.json"
    for bad in (("reports", "a/b"), ("reports", ""), ("reports", ".."), ("reports", "a\nb")):
        with pytest.raises(InvalidInputError):
            object_key(*bad)


@pytest.mark.parametrize("tenant", ["acme\n", "a..b", "../acme", "acme/../globex"])
def test_batches_refuse_hostile_tenants_and_write_nothing(tenant: str, tmp_path: Path) -> None:
    objects = ObjectStore(str(tmp_path / "data"), {})
    with pytest.raises(InvalidInputError, match="invalid tenant id"):
        objects.write_batch("traffic", tenant, "2024-05-01", pd.DataFrame({"record_id": ["a"]}))
    assert _tree(tmp_path) == set()
