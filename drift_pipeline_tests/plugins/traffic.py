"""Fixtures for the traffic tests: a real local S3 (moto's server) and object stores on it and on disk."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drift_pipeline.persistence.objects import ObjectStore

_S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free local port, for the whole session (dummy credentials in the env)."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in _S3_ENV}
    os.environ.update(_S3_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def s3_storage_options(s3_endpoint: str) -> dict[str, Any]:
    """s3fs options pointing at the moto server."""
    return {"client_kwargs": {"endpoint_url": s3_endpoint}, "key": "testing", "secret": "testing"}


@pytest.fixture(scope="session")
def s3_bucket(s3_storage_options: dict[str, Any]) -> str:
    """A bucket on the moto server."""
    import s3fs

    fs = s3fs.S3FileSystem(**s3_storage_options)
    name = f"drift-{uuid.uuid4().hex[:8]}"
    fs.mkdir(name)
    return name


@pytest.fixture
def s3_url(s3_bucket: str) -> str:
    """A fresh, empty ``s3://`` prefix per test."""
    return f"s3://{s3_bucket}/t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def s3_objects(s3_url: str, s3_storage_options: dict[str, Any]) -> ObjectStore:
    return ObjectStore(s3_url, s3_storage_options)


@pytest.fixture
def local_objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "objects"), {})


@pytest.fixture(params=["local", "s3"])
def objects(request: pytest.FixtureRequest) -> ObjectStore:
    """The same test on a local folder and on S3 (moto's server)."""
    return request.getfixturevalue(f"{request.param}_objects")
