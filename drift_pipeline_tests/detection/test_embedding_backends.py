"""The faster embedding backends (OpenVINO bf16/fp32, ONNX Runtime fp32/int8, torch bf16) against the sentence-transformers fp32 reference, on real LLMDrift answers.

Error budget (docs/scoring.md, "Embedding backends"): per-pair cosine similarity within 0.01 of the
reference on average and 0.03 at worst, and no verdict that changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drift_pipeline.config import Settings
from drift_pipeline.detection import embedding_bf16, embedding_onnx, embedding_openvino, embeddings
from drift_pipeline.detection.compare import compare
from drift_pipeline.detection.embeddings import Embedder, load_encoder
from drift_pipeline.errors import DriftPipelineError, InvalidInputError

MEAN_BUDGET = 0.01
MAX_BUDGET = 0.03
INT8_DOCUMENTED_MAX = 0.05
# int8's mean error depends on the CPU's int8 kernels: ~0.007 with VNNI, 0.0103 on an AVX2-only CPU
# (docs/scoring.md, "Why int8 is opt-in only"): at the budget, never within it with room to spare.
INT8_DOCUMENTED_MEAN = 0.012


def real_pairs(frame: pd.DataFrame, base: str, cand: str, n: int) -> tuple[list[str], list[str]]:
    """The first `n` pairs (by id) whose two answers differ: a fixed sample."""
    b = frame[frame["model"].str.endswith(base)].set_index("id")["answer"].fillna("").astype(str)
    c = frame[frame["model"].str.endswith(cand)].set_index("id")["answer"].fillna("").astype(str)
    ids = [i for i in sorted(b.index.intersection(c.index)) if b[i] != c[i]][:n]
    return [b[i] for i in ids], [c[i] for i in ids]


@pytest.fixture(scope="module")
def sample(sensitiveq, prime) -> tuple[list[str], list[str]]:
    """120 real pairs: both model families, both files (short refusals and long explanations)."""
    left: list[str] = []
    right: list[str] = []
    for frame, n in ((sensitiveq, 30), (prime, 30)):
        for base, cand in (("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613"), ("gpt-4-0314", "gpt-4-0613")):
            a, b = real_pairs(frame, base, cand, n)
            left += a
            right += b
    return left, right


def similarities(encoder, left: list[str], right: list[str]) -> np.ndarray:
    vectors = encoder.encode(left + right, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    return np.einsum("ij,ij->i", vectors[: len(left)], vectors[len(left) :])


def reference_similarities(embedder, left: list[str], right: list[str]) -> np.ndarray:
    """The fp32 reference through the session's cached embedder: each text reaches the model once."""
    vectors = embedder.embed(left + right)
    return np.einsum("ij,ij->i", vectors[: len(left)], vectors[len(left) :])


def test_backend_id_names_backend_model_and_truncation():
    assert embedding_onnx.backend_id("onnx-int8", 128) == "onnx-int8/all-MiniLM-L6-v2/max_seq=128/dim=384"
    assert embedding_onnx.backend_id("onnx", 128) != embedding_onnx.backend_id("onnx", 256)
    with pytest.raises(DriftPipelineError, match="unknown ONNX embedding backend 'onnx-fp8'"):
        embedding_onnx.backend_id("onnx-fp8", 256)
    with pytest.raises(InvalidInputError, match="reads 256 tokens"):
        load_encoder("local", 128)


def test_cache_folder_follows_weights_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_PIPELINE_MODEL_CACHE", str(tmp_path / "models"))
    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"weights v1")
    first = embedding_onnx.cache_dir(weights)
    assert first.parent == tmp_path / "models"
    (weights / "model.safetensors").write_bytes(b"weights v2")
    second = embedding_onnx.cache_dir(weights)
    assert second != first  # new weights never reuse an old export
    monkeypatch.setattr(embedding_onnx, "EXPORT_RECIPE", "test-recipe")
    assert embedding_onnx.cache_dir(weights) not in (first, second)  # nor does a new export recipe


def test_bf16_needs_bf16_matrix_units(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert not embedding_bf16.supported(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n")
    assert embedding_bf16.supported(cpuinfo)
    assert not embedding_bf16.supported(tmp_path / "missing")
    assert embedding_bf16.backend_id(128) == "torch-bf16/all-MiniLM-L6-v2/max_seq=128/dim=384"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["onnx", "openvino"])
def test_fp32_exports_give_the_reference_vectors(name, sample, embedder):
    left, right = sample
    texts = left[:40] + right[:40] + ["", "   padded  ", "x"]
    reference = embedder.embed(texts)
    got = load_encoder(name).encode(texts, batch_size=16)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    assert np.abs(got - reference).max() < 1e-4
    # Padding must not leak into the vector: a text alone equals the same text in a mixed-length batch.
    alone = load_encoder(name).encode([texts[0]], batch_size=1)
    assert np.abs(alone[0] - got[0]).max() < 1e-5


def test_openvino_names_its_precision_and_refuses_emulated_bf16(monkeypatch):
    monkeypatch.setattr(embedding_bf16, "supported", lambda: True)  # the id is the same on every CPU
    assert embedding_openvino.backend_id("openvino-bf16") == "openvino-bf16/all-MiniLM-L6-v2/max_seq=256/dim=384"
    assert embedding_openvino.backend_id("openvino") != embedding_openvino.backend_id("openvino-bf16")
    with pytest.raises(DriftPipelineError, match="unknown OpenVINO embedding backend 'openvino-int4'"):
        embedding_openvino.precision("openvino-int4")
    monkeypatch.setattr(embedding_bf16, "supported", lambda: False)
    assert embedding_openvino.precision("openvino") == "f32"
    with pytest.raises(DriftPipelineError, match=r"needs a CPU with bf16 matrix units .*use openvino \(fp32\) here"):
        embedding_openvino.precision("openvino-bf16")


@pytest.mark.slow
def test_export_is_cached_owner_only_and_reused():
    path = embedding_onnx.onnx_path("fp32")
    assert path.is_file() and path.stat().st_mode & 0o077 == 0
    before = path.stat().st_mtime_ns
    assert embedding_onnx.onnx_path("fp32") == path and path.stat().st_mtime_ns == before


@pytest.mark.slow
@pytest.mark.skipif(not embedding_bf16.supported(), reason="this CPU has no bf16 matrix units")
@pytest.mark.parametrize("name", ["openvino-bf16", "torch-bf16"])
def test_bf16_similarity_error_within_budget(name, sample, embedder):
    left, right = sample
    reference = reference_similarities(embedder, left, right)
    delta = np.abs(similarities(load_encoder(name), left, right) - reference)
    assert delta.mean() <= MEAN_BUDGET, f"mean |d cos| {delta.mean():.4f}"
    assert delta.max() <= MAX_BUDGET, f"max |d cos| {delta.max():.4f}"


@pytest.mark.slow
def test_int8_error_is_what_the_docs_say(sample, embedder):
    """int8 is at the mean budget and outside the worst case (docs/scoring.md): opt-in only, never a default."""
    left, right = sample
    reference = reference_similarities(embedder, left, right)
    delta = np.abs(similarities(load_encoder("onnx-int8"), left, right) - reference)
    assert delta.mean() <= INT8_DOCUMENTED_MEAN, f"mean |d cos| {delta.mean():.4f}"
    assert delta.max() <= INT8_DOCUMENTED_MAX, f"max |d cos| {delta.max():.4f}"


@pytest.mark.slow
def test_truncation_changes_only_long_texts(sample):
    left, _ = sample
    short, long = min(left, key=len), max(left, key=len)
    at_128 = load_encoder("onnx", 128).encode([short, long])
    at_256 = load_encoder("onnx", 256).encode([short, long])
    assert np.abs(at_128[0] - at_256[0]).max() < 1e-5
    assert np.abs(at_128[1] - at_256[1]).max() > 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not embedding_bf16.supported(), reason="this CPU has no bf16 matrix units")
def test_the_default_bf16_changes_no_verdict_on_sensitiveq(llmdrift_dir, embedder):
    bf16 = Embedder(backend=embeddings.BACKENDS["openvino-bf16"](Settings.from_env()))
    for base, cand in (("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613"), ("gpt-4-0314", "gpt-4-0613")):
        got = [verdicts(llmdrift_dir / "SENSITIVEQ_EVAL.csv", base, cand, e) for e in (embedder, bf16)]
        assert got[0] == got[1]


def verdicts(path, base: str, cand: str, embedder: Embedder) -> tuple:
    report = compare(path, fmt="llmdrift", baseline=base, candidate=cand, embedder=embedder).report
    dims = {d["name"]: d["verdict"] for d in report["dimensions"]}
    return report["verdict"], report["distribution"].get("drift"), dims
