"""Synthetic vectors for the store bench, and recall against exact search.

Uniform random unit vectors are the worst case for an HNSW graph (in 384 dimensions every point is
about equally far from every other, so a graph search's neighbours say little) and nothing like
sentence embeddings, whose points lie near a low-dimensional, clustered surface. The bench uses
``clustered``: a mixture of Gaussian clusters in a ``latent``-dimensional space, mapped into ``dim``
dimensions by one fixed random projection, plus a little isotropic noise, normalised. Queries are
fresh samples of the same mixture (near the data, not copies of stored points).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Clustered", "exact_top_k", "recall_at_k"]


class Clustered:
    """A fixed mixture of ``clusters`` Gaussian clusters; ``sample(n)`` draws unit vectors from it."""

    def __init__(
        self, rng: np.random.Generator, dim: int, *, clusters: int = 1000, latent: int = 32, spread: float = 0.5
    ) -> None:
        self._rng = rng
        self._centers = rng.standard_normal((clusters, latent)).astype(np.float32)
        self._projection = (rng.standard_normal((latent, dim)) / np.sqrt(latent)).astype(np.float32)
        self._spread = spread
        self._noise = 0.1 / np.sqrt(dim)

    def sample(self, n: int) -> np.ndarray:
        rng = self._rng
        which = rng.integers(0, len(self._centers), n)
        latent = self._centers[which] + self._spread * rng.standard_normal((n, self._centers.shape[1]))
        vectors = latent.astype(np.float32) @ self._projection
        vectors += self._noise * rng.standard_normal(vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, *, rows: int = 100_000) -> list[list[int]]:
    """Row numbers of the ``k`` vectors with the highest cosine to each query, best first (brute force;
    ``vectors`` and ``queries`` unit length), ``rows`` vectors at a time to bound the memory."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), rows):
        scores = queries @ vectors[start : start + rows].T
        take = min(k, scores.shape[1])
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        best_rows = np.concatenate([best_rows, part + start], axis=1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_rows = np.take_along_axis(best_rows, keep, axis=1)
    return [list(map(int, r)) for r in best_rows]


def recall_at_k(found: Sequence[Sequence[object]], exact: Sequence[Sequence[object]], k: int) -> float:
    """Mean over queries of |found's first k ∩ exact's first k| / k (the exact list must hold k)."""
    if not exact:
        return float("nan")
    total = 0.0
    for got, truth in zip(found, exact, strict=True):
        if len(truth) < k:
            raise ValueError(f"the exact answer holds {len(truth)} results, fewer than k={k}")
        total += len(set(got[:k]) & set(truth[:k])) / k
    return total / len(exact)
