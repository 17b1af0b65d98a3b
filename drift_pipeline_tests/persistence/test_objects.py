"""Object storage: committed batches on a local folder and on S3 (moto's server)."""

from __future__ import annotations

import pandas as pd
import pytest

from drift_pipeline.errors import IntegrityError, InvalidInputError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.objects import ObjectStore, storage_options_from_env


def test_batches_round_trip_by_tenant_and_day(objects: ObjectStore):
    objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a", "b"], "x": [1, 2]}))
    objects.write_batch("traffic", "acme", "2024-05-03", pd.DataFrame({"record_id": ["c"], "x": [3]}), fmt="jsonl")
    objects.write_batch("traffic", "globex", "2024-05-01", pd.DataFrame({"record_id": ["z"], "x": [9]}))

    assert objects.list_tenants("traffic") == ["acme", "globex"]
    assert sorted(objects.read_batches("traffic", "acme")["record_id"]) == ["a", "b", "c"]
    assert list(objects.read_batches("traffic", "acme", "2024-05-02", "2024-05-03")["record_id"]) == ["c"]
    assert list(objects.read_batches("traffic", "globex")["record_id"]) == ["z"]
    assert objects.read_batches("traffic", "initech").empty


def test_uncommitted_data_file_is_invisible(objects: ObjectStore):
    """A crash between the data PUT and the commit marker leaves nothing a reader can see."""
    ref = objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a"]}))
    orphan = ref.path.replace(ref.batch_id, "orphan-batch")
    objects.write_bytes(orphan, objects.read_bytes(ref.path))  # data file without a marker
    assert [r.batch_id for r in objects.list_batches("traffic", "acme")] == [ref.batch_id]
    assert list(objects.read_batches("traffic", "acme")["record_id"]) == ["a"]


def test_same_batch_id_replaces_instead_of_duplicating(objects: ObjectStore):
    for rows in (["a", "b"], ["a", "b", "c"]):
        objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": rows}), batch_id="b-1")
    assert sorted(objects.read_batches("traffic", "acme")["record_id"]) == ["a", "b", "c"]


def test_tampered_batch_fails_verification(local_objects: ObjectStore):
    ref = local_objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a"]}))
    local_objects.write_bytes(ref.path, b"not parquet")
    with pytest.raises(IntegrityError):
        local_objects.read_batches("traffic", "acme")


def test_local_write_leaves_no_temporary_files(local_objects: ObjectStore, tmp_path):
    local_objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a"]}))
    leftovers = [p for p in (tmp_path / "objects").rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "a|b", "a,b", "a..b", ".hidden", "a b", "x" * 200])
def test_tenant_ids_must_be_slugs(bad: str, local_objects: ObjectStore):
    with pytest.raises(InvalidInputError):
        check_identifier(bad, "tenant id")
    with pytest.raises(InvalidInputError):
        local_objects.write_batch("traffic", bad, "2024-05-01", pd.DataFrame({"a": [1]}))


@pytest.mark.parametrize("bad", ["acme\n", "Acme", "-acme", "_unknown", "x" * 101])
def test_one_identifier_rule_refuses_newlines_capitals_and_leading_separators(bad: str):
    with pytest.raises(InvalidInputError, match="invalid agent id"):
        check_identifier(bad, "agent id")
    assert check_identifier("acme-eu_2.prod", "agent id") == "acme-eu_2.prod"
    assert check_identifier("x" * 100, "agent id") == "x" * 100


def test_bad_day_and_format_are_refused(local_objects: ObjectStore):
    with pytest.raises(InvalidInputError, match="invalid day"):
        local_objects.write_batch("traffic", "acme", "2024-13-45", pd.DataFrame({"a": [1]}))
    with pytest.raises(InvalidInputError, match="unknown batch format"):
        local_objects.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"a": [1]}), fmt="csv")


def test_s3_endpoint_comes_from_the_environment(monkeypatch, s3_endpoint: str, s3_bucket: str):
    monkeypatch.setenv("DRIFT_PIPELINE_S3_ENDPOINT_URL", s3_endpoint)
    assert storage_options_from_env("s3://x/y")["client_kwargs"]["endpoint_url"] == s3_endpoint
    assert "client_kwargs" not in storage_options_from_env("/tmp/local")
    store = ObjectStore(f"s3://{s3_bucket}/from-env")
    store.write_batch("traffic", "acme", "2024-05-01", pd.DataFrame({"record_id": ["a"]}))
    assert list(ObjectStore(f"s3://{s3_bucket}/from-env").read_batches("traffic", "acme")["record_id"]) == ["a"]
