"""Embeddings through a real local OpenAI-compatible `/v1/embeddings` server: batching, normalisation,
retries, a hostile server, backend selection by settings, and compare/baselines using it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from drift_pipeline.config import Settings
from drift_pipeline.detection import baselines, embedding_bf16, embeddings
from drift_pipeline.detection.compare import compare
from drift_pipeline.detection.embedding_remote import EmbeddingServiceError, RemoteEncoder
from drift_pipeline.detection.statistics import NoiseFloor
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.retry import RetryPolicy
from drift_pipeline.traffic.records import TrafficRecord
from drift_pipeline.versioning import manifests, registry, tenants
from drift_pipeline_tests.plugins.cli import CliRun
from drift_pipeline_tests.plugins.embedding_server import DIM, FakeEmbeddings, hashed_vector

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)
KEY = "sk-embed-secret-123"


def encoder(server: FakeEmbeddings, **kwargs: object) -> RemoteEncoder:
    return RemoteEncoder("hash-64", server.url, api_key=SecretStr(KEY), retry=FAST, **kwargs)  # type: ignore[arg-type]


def unit(vector: list[float]) -> np.ndarray:
    v = np.asarray(vector)
    return v / np.linalg.norm(v)


def test_batches_normalises_keeps_order_and_sends_the_key(embedding_server: FakeEmbeddings) -> None:
    texts = [f"text number {i} about refunds" for i in range(10)]
    embedding_server.mode = "reversed"  # a valid answer may list vectors in any order: `index` decides
    vectors = encoder(embedding_server).encode(texts, batch_size=4)

    assert [len(r["body"]["input"]) for r in embedding_server.requests] == [4, 4, 2]
    assert {r["path"] for r in embedding_server.requests} == {"/v1/embeddings"}
    assert {r["auth"] for r in embedding_server.requests} == {f"Bearer {KEY}"}
    assert embedding_server.requests[0]["body"]["model"] == "hash-64"
    assert vectors.shape == (10, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, unit(hashed_vector(text)), atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("dim", "vectors of different lengths"),
        ("nan", "NaN or infinite"),
        ("count", "returned 2 vectors for 3 texts"),
        ("indices", "indices that are not one per text"),
        pytest.param(
            "index-type",
            "indices that are not one per text",
            # litellm's own response model warns while it copies the string index; our check then refuses it.
            marks=pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
        ),
        ("zero", "a zero vector"),
        ("text", "not JSON \\(text/html\\)"),
        ("huge", "more than 1000000 bytes"),
        ("stream", "more than 1000000 bytes"),
    ],
)
def test_a_hostile_server_is_one_clear_error_and_not_retried(
    embedding_server: FakeEmbeddings, mode: str, message: str
) -> None:
    embedding_server.mode = mode
    with pytest.raises(EmbeddingServiceError, match=message) as caught:
        encoder(embedding_server, max_response_bytes=1_000_000).encode(["a b", "c d", "e"])
    assert len(embedding_server.requests) == 1  # a wrong answer is not a transient failure
    assert "\n" not in str(caught.value) and KEY not in str(caught.value)
    assert embedding_server.url in str(caught.value)


def test_empty_texts_are_embedded_like_no_content(embedding_server: FakeEmbeddings) -> None:
    vectors = encoder(embedding_server).encode(["", "  ", "refund"])
    assert vectors.shape == (3, DIM) and embedding_server.requests[0]["body"]["input"] == [" ", " ", "refund"]


def test_a_configured_dimension_is_enforced(embedding_server: FakeEmbeddings) -> None:
    with pytest.raises(EmbeddingServiceError, match=f"returned {DIM}-dimensional vectors, expected 32"):
        encoder(embedding_server, dimension=32).encode(["x"])
    learned = encoder(embedding_server)
    learned.encode(["x"])
    assert learned.dimension == DIM  # the first valid answer fixes the dimension for the next ones


def test_transient_failures_are_retried_and_client_errors_are_not(
    embedding_server: FakeEmbeddings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    embedding_server.fail = [503, 429]
    assert encoder(embedding_server).encode(["x"]).shape == (1, DIM)
    assert len(embedding_server.requests) == 3

    embedding_server.requests.clear()
    embedding_server.fail = [401]
    with pytest.raises(EmbeddingServiceError, match="HTTP 401") as caught:
        encoder(embedding_server).encode(["x"])
    assert len(embedding_server.requests) == 1
    assert KEY not in str(caught.value) and KEY not in caplog.text
    assert KEY not in repr(encoder(embedding_server)) and KEY not in repr(Settings(embedding_api_key=KEY))


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    dead = RemoteEncoder("m", "http://ops:hunter2@127.0.0.1:9/v1", retry=RetryPolicy(attempts=2, base_delay_s=0.01))
    with pytest.raises(EmbeddingServiceError, match=r"embedding server http://127.0.0.1:9/v1 failed") as caught:
        dead.encode(["x"])
    assert "\n" not in str(caught.value) and "hunter2" not in str(caught.value) + repr(dead)


def test_backends_are_chosen_by_settings(monkeypatch: pytest.MonkeyPatch, embedding_server: FakeEmbeddings) -> None:
    # `auto`, the default: OpenVINO in bf16 where the CPU has bf16 matrix units, in fp32 elsewhere.
    monkeypatch.setattr(embedding_bf16, "supported", lambda: True)
    assert embeddings.backend(Settings()).id == "openvino-bf16/all-MiniLM-L6-v2/max_seq=256/dim=384"
    monkeypatch.setattr(embedding_bf16, "supported", lambda: False)
    assert embeddings.backend(Settings()).id == "openvino/all-MiniLM-L6-v2/max_seq=256/dim=384"
    assert embeddings.backend(Settings(embedding_backend="local")).id == embeddings.LOCAL_BACKEND_ID
    remote = Settings(
        embedding_backend="openai-compatible", embedding_model="hash-64", embedding_url=embedding_server.url
    )
    assert embeddings.backend(remote).id == "openai-compatible/hash-64"
    sized = Settings(**{**remote.model_dump(include={"embedding_backend", "embedding_model", "embedding_url"})},
                     embedding_dimensions=DIM)  # fmt: skip
    assert embeddings.backend(sized).id == f"openai-compatible/hash-64/dim={DIM}"
    with pytest.raises(
        InvalidInputError,
        match=r"unknown backend .tei.; use one of auto, local, onnx, onnx-int8, openai-compatible, openvino, "
        r"openvino-bf16, torch-bf16",
    ):
        embeddings.backend(Settings(embedding_backend="tei"))
    with pytest.raises(
        InvalidInputError, match="needs DRIFT_PIPELINE_EMBEDDING_MODEL and DRIFT_PIPELINE_EMBEDDING_URL"
    ):
        embeddings.backend(Settings(embedding_backend="openai-compatible"))
    with pytest.raises(InvalidInputError, match="local backend runs all-MiniLM-L6-v2 only"):
        embeddings.backend(Settings(embedding_model="bge-small"))
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_BACKEND", "Bad Name")
    with pytest.raises(InvalidInputError, match="DRIFT_PIPELINE_EMBEDDING_BACKEND"):
        Settings.from_env()


@pytest.fixture
def remote_env(home: Path, monkeypatch: pytest.MonkeyPatch, embedding_server: FakeEmbeddings) -> FakeEmbeddings:
    """Settings that send every embedding to the local server; the in-process model must not be loaded."""
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_BACKEND", "openai-compatible")
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_MODEL", "hash-64")
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_URL", embedding_server.url)
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_API_KEY", KEY)
    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_STORE", "true")

    def no_local_model() -> None:
        raise AssertionError("the local model was loaded although the backend is remote")

    monkeypatch.setattr(embeddings, "LOCAL", embeddings.Backend(embeddings.LOCAL_BACKEND_ID, no_local_model, 384))
    return embedding_server


def _records(path: Path) -> Path:
    rows = [
        TrafficRecord(
            tenant_id="acme",
            agent_id="support",
            timestamp=f"2026-11-20T07:00:{i:02d}+00:00",
            messages=json.dumps([{"role": "user", "content": f"question {i}"}]),
            response_text=answer,
            prompt_id=f"p{i}",
            served_model=version,
        ).to_row()
        for i in range(12)
        for version, answer in (("v1", f"the refund for order {i} was sent"), ("v2", f"order {i} ships next week"))
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def test_compare_embeds_through_the_server_and_the_store(remote_env: FakeEmbeddings, tmp_path: Path) -> None:
    path = _records(tmp_path / "pairs.jsonl")
    cache = tmp_path / "cache.npz"
    first = compare(path, fmt="jsonl", baseline="v1", candidate="v2", dimensions=["similarity"], embedding_cache=cache)
    answers = {f"the refund for order {i} was sent" for i in range(12)} | {
        f"order {i} ships next week" for i in range(12)
    }
    assert answers <= set(remote_env.texts_seen)
    similarity = first.report["descriptive"][0]
    assert similarity["name"] == "similarity" and 0 < similarity["candidate_value"] < 1

    remote_env.requests.clear()  # a second run, in a new embedder: the deployment's store answers
    again = compare(path, fmt="jsonl", baseline="v1", candidate="v2", dimensions=["similarity"])
    assert remote_env.requests == [] and again.report["descriptive"] == first.report["descriptive"]
    with np.load(cache) as saved:
        assert str(saved["model"]) == "openai-compatible/hash-64" and saved["vectors"].shape[1] == DIM


def test_a_baseline_is_embedded_by_the_configured_backend(remote_env: FakeEmbeddings, home: Path) -> None:
    store = Store.open(f"sqlite:///{home / 'drift.db'}")
    objects = ObjectStore(str(home / "data"), {})
    registry.add_version(
        store, "openai", "m-1", actor="t", litellm_params={"mock_response": "Your refund is on its way."}
    )
    tenants.add_tenant(store, "acme", actor="t")
    manifest = manifests.pin(store, "acme", "support", "m-1", actor="t")
    sample = pd.DataFrame([
        TrafficRecord(tenant_id="acme", agent_id="support", timestamp=f"2026-11-20T07:00:0{i}+00:00",
                      messages=json.dumps([{"role": "user", "content": f"where is refund {i}?"}])).to_row()
        for i in range(3)
    ])  # fmt: skip
    info = baselines.build_baseline(store, objects, manifest, sample, embedder=embeddings.shared(), actor="t")

    assert "Your refund is on its way." in remote_env.texts_seen
    assert info.summary["embedding_backend"] == "openai-compatible/hash-64"
    frame = baselines.load_frame(objects, info)
    np.testing.assert_allclose(frame["embedding"].iloc[0], unit(hashed_vector("Your refund is on its way.")), atol=1e-6)
    assert embeddings.shared().backend.id == "openai-compatible/hash-64"


def test_the_real_model_served_remotely_gives_the_local_vectors(embedding_server: FakeEmbeddings) -> None:
    """A server running all-MiniLM-L6-v2 (as text-embeddings-inference would) agrees with the in-process model."""
    model = embeddings.load_model()
    embedding_server.model = model
    texts = ["The refund was sent on Monday.", "I cannot help with that request.", "Paris is the capital of France."]
    remote = encoder(embedding_server).encode(texts)
    local = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.einsum("ij,ij->i", remote, local).min() > 0.9999


def test_the_cli_uses_the_server_and_reports_a_bad_one_in_one_line(
    remote_env: FakeEmbeddings, tmp_path: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    path = _records(tmp_path / "pairs.jsonl")
    args = ["compare", str(path), "--baseline", "v1", "--candidate", "v2", "--dimension", "similarity"]
    code, out, err = run_cli(*args, "--output", str(tmp_path / "ok.json"))
    assert code == 0, err
    assert "the refund for order 3 was sent" in remote_env.texts_seen
    assert json.loads((tmp_path / "ok.json").read_text())["descriptive"][0]["name"] == "similarity"

    monkeypatch.setenv("DRIFT_PIPELINE_EMBEDDING_STORE", "false")  # or the store would answer
    remote_env.mode = "nan"
    code, out, err = run_cli(*args, "--output", str(tmp_path / "bad.json"))
    assert code != 0 and "Traceback" not in out + err and KEY not in out + err
    assert "returned NaN or infinite values" in " ".join((out + err).split())
    assert not (tmp_path / "bad.json").exists()

    monkeypatch.delenv("DRIFT_PIPELINE_EMBEDDING_URL")
    code, out, err = run_cli(*args, "--output", str(tmp_path / "bad.json"))
    assert code != 0 and "DRIFT_PIPELINE_EMBEDDING_URL" in " ".join((out + err).split())


def test_a_noise_floor_from_another_backend_is_not_used_for_similarity(embedding_server: FakeEmbeddings) -> None:
    """Similarities of two backends are on different scales: today's must not be tested against a floor
    measured on another backend (the other dimensions' floors stay)."""
    floor = NoiseFloor(floors={"similarity": 0.1, "length": 0.2}, similarities=[0.97, 0.99], n_pairs=2)
    remote = embeddings.backend(
        Settings(embedding_backend="openai-compatible", embedding_model="hash-64", embedding_url=embedding_server.url)
    )

    def info(summary: dict[str, object]) -> baselines.BaselineInfo:
        summary = {**summary, "noise_floor": floor.to_dict()}
        return baselines.BaselineInfo("b1", "acme", "support", "m-1", "file:///x", 2, summary, datetime.now(UTC))

    on_local = info({"embedding_backend": embeddings.LOCAL_BACKEND_ID})
    assert baselines.noise_floor_for(on_local, embeddings.Embedder()) == floor
    assert baselines.noise_floor_for(info({}), embeddings.Embedder()) == floor  # older baselines: local
    moved = baselines.noise_floor_for(on_local, embeddings.Embedder(backend=remote))
    assert moved is not None and moved.similarities == [] and moved.floors == {"length": 0.2}
    assert (
        baselines.noise_floor_for(info({"embedding_backend": remote.id}), embeddings.Embedder(backend=remote)) == floor
    )
    # Backends within the error budget of the fp32 reference share its scale; int8 (outside it) does not.
    for name, same_scale in (("torch-bf16", True), ("openvino-bf16", True), ("onnx", True), ("onnx-int8", False)):
        other = embeddings.Embedder(backend=embeddings.Backend(embeddings.minilm_id(name), lambda: None, 384))
        assert (baselines.noise_floor_for(on_local, other) == floor) is same_scale, name
