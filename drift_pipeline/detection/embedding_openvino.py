"""all-MiniLM-L6-v2 on OpenVINO: bf16 on CPUs with bf16 matrix units, fp32 (the reference's vectors) elsewhere.

OpenVINO's CPU plugin runs the same exported graph as the ONNX backends (`embedding_onnx.onnx_path`) with
fused attention, LayerNorm and GELU kernels. With ``INFERENCE_PRECISION_HINT=bf16`` on a CPU with AMX-BF16
or AVX512-BF16 its matrix products run on the bf16 units (fp32 accumulation): within the error budget
(docs/scoring.md, "Embedding backends"), ~2x the fp32 rate, and it loads in well under a second without
importing torch (the sentence-transformers bf16 path spends ~8 s importing torch and transformers). The
precision is always asked for explicitly and checked after compiling, never left to the plugin's default,
because it is part of the backend id and so of every cache key.

Compiled kernels are cached next to the exported graph (OpenVINO keys that cache by model, settings and
its own version); a read-only model cache (the container image) just compiles each time.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from drift_pipeline.detection.embedding_minilm import PooledEncoder
from drift_pipeline.errors import DriftPipelineError

# Backend name -> OpenVINO inference precision.
BACKENDS = {"openvino": "f32", "openvino-bf16": "bf16"}
COMPILED_PRECISION = {"f32": "float32", "bf16": "bfloat16"}  # how the compiled model reports each


def backend_id(backend: str, max_seq_length: int = 256) -> str:
    """Names everything that changes a vector (backend and precision, model, truncation, dimension)."""
    from drift_pipeline.detection.embeddings import minilm_id

    precision(backend)
    return minilm_id(backend, max_seq_length)


def precision(backend: str) -> str:
    """`f32` or `bf16` for a backend name; bf16 only where the CPU has bf16 matrix units (emulated bf16
    is slower than fp32, so it is refused rather than quietly slow)."""
    from drift_pipeline.detection import embedding_bf16

    if backend not in BACKENDS:
        raise DriftPipelineError(f"unknown OpenVINO embedding backend {backend!r} (use one of {', '.join(BACKENDS)})")
    if BACKENDS[backend] == "bf16" and not embedding_bf16.supported():
        raise DriftPipelineError(
            f"embedding backend {backend} needs a CPU with bf16 matrix units "
            f"({' or '.join(embedding_bf16.BF16_FLAGS)}); use openvino (fp32) here"
        )
    return BACKENDS[backend]


class OpenVinoEncoder(PooledEncoder):
    """SentenceTransformer's `encode` on OpenVINO; thread-safe (one infer request per thread)."""

    def __init__(self, backend: str = "openvino-bf16", *, max_seq_length: int = 256) -> None:
        import openvino

        from drift_pipeline.detection.embedding_onnx import onnx_path

        super().__init__(max_seq_length)
        self.backend = backend
        self.id = backend_id(backend, max_seq_length)  # refuses an unknown name or emulated bf16
        wanted = BACKENDS[backend]
        graph = onnx_path("fp32")
        # LATENCY: one stream on all cores, which is what a single caller embedding batch after batch needs.
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": wanted, "PERFORMANCE_HINT": "LATENCY"}
        compile_cache = graph.parent / "openvino"
        if _writable(compile_cache):
            config["CACHE_DIR"] = str(compile_cache)
        self.model = openvino.Core().compile_model(str(graph), "CPU", config)
        got = str(self.model.get_property("INFERENCE_PRECISION_HINT"))
        if COMPILED_PRECISION[wanted] not in got:
            raise DriftPipelineError(
                f"OpenVINO compiled {backend} in {got}, not {wanted}: refusing mislabelled vectors"
            )
        self._requests = threading.local()
        if wanted == "f32":
            # fp32 on an AVX2-only 2-core machine: batches of 8 embedded 1.2x the texts/s of batches of 32
            # (less padding; a one-off measurement on 300 LLMDrift answers, 2026-12-03). bf16 was not measured.
            self.infer_batch = 8

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.model.create_infer_request()
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return np.asarray(request.infer(feed)[self.model.output(0)], dtype=np.float32)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


@functools.cache
def load_encoder(backend: str = "openvino-bf16", max_seq_length: int = 256) -> OpenVinoEncoder:
    """One encoder per backend and truncation per process."""
    return OpenVinoEncoder(backend, max_seq_length=max_seq_length)
