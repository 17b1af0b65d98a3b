"""The traffic record schema and reading committed traffic back."""

from __future__ import annotations

import pandas as pd

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.records import read_traffic


def test_read_traffic_collapses_the_same_record_from_two_batches(objects: ObjectStore):
    frame = pd.DataFrame({"record_id": ["a", "b"], "tenant_id": ["acme", "acme"]})
    objects.write_batch("traffic", "acme", "2024-05-01", frame)
    objects.write_batch("traffic", "acme", "2024-05-01", frame.iloc[:1])
    assert sorted(read_traffic(objects, "acme")["record_id"]) == ["a", "b"]
