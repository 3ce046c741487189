"""The store bench's recall: exact search by brute force, recall@k, the synthetic vectors, and
which store scenarios a run takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag_streams.bench import BenchOptions
from rag_streams.bench.offline import memory_short_mb
from rag_streams.bench.report import plot, table
from rag_streams.bench.vectors import Clustered, exact_top_k, recall_at_k
from rag_streams.cli import build_parser


def test_recall_counts_the_exact_top_k_found() -> None:
    exact = [["a", "b", "c"], ["x", "y", "z"]]
    assert recall_at_k([["a", "b", "c"], ["x", "y", "z"]], exact, 3) == 1.0
    assert recall_at_k([["c", "a", "q"], ["q", "r", "s"]], exact, 3) == pytest.approx((2 / 3 + 0) / 2)
    assert recall_at_k([["a", "q"], ["z"]], exact, 2) == pytest.approx((1 / 2 + 0) / 2)  # only the first k count
    with pytest.raises(ValueError):
        recall_at_k([["a"]], [["a"]], 2)


def test_exact_top_k_is_brute_force_in_any_chunking() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((1000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[[3, 500, 999]] + 0.01
    expected = [list(map(int, np.argsort(-(vectors @ q), kind="stable")[:5])) for q in queries]
    assert exact_top_k(vectors, queries, 5) == expected
    assert exact_top_k(vectors, queries, 5, rows=7) == expected  # across chunk boundaries
    assert [r[0] for r in expected] == [3, 500, 999]


def test_clustered_vectors_are_unit_and_clustered() -> None:
    mixture = Clustered(np.random.default_rng(2), 64, clusters=10)
    sample = mixture.sample(2000)
    assert sample.shape == (2000, 64) and sample.dtype == np.float32
    assert np.allclose(np.linalg.norm(sample, axis=1), 1.0, atol=1e-5)
    nearest = np.sort(sample[:100] @ sample[100:].T, axis=1)[:, -1]
    assert nearest.mean() > 0.9  # every point has close neighbours, unlike uniform random vectors (~0.4 here)


def test_the_full_bench_takes_1m_int8_unless_capped() -> None:
    assert build_parser().parse_args(["bench", "--max-points", "100000"]).max_points == 100_000
    assert BenchOptions().store_scenarios == ((10_000, "none"), (100_000, "none"), (1_000_000, "int8"))
    assert BenchOptions(max_points=100_000).store_sizes == (10_000, 100_000)
    assert BenchOptions(quick=True).store_scenarios == ((10_000, "none"),)


def test_memory_short_reads_memavailable(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 24000000 kB\nMemAvailable: 2097152 kB\n")  # 2 GiB
    assert memory_short_mb(10_000, meminfo=str(meminfo)) == 0
    assert memory_short_mb(1_000_000, meminfo=str(meminfo)) == 12695 - 2048
    assert memory_short_mb(1_000_000, meminfo=str(tmp_path / "missing")) == 0


@pytest.mark.filterwarnings("ignore:No artists with labels")  # this result has no freshness or ingest series
def test_the_report_shows_recall_and_a_skipped_scenario(tmp_path: Path) -> None:
    measured = {"quantization": "none", "recall_at_10": 0.987, "query_p99_ms": 3.5, "query_ms": {"p50_ms": 1.0}}
    measured["filtered_query_ms"] = {"p50_ms": 0.5, "p99_ms": 1.5}
    skipped = {"points": 1_000_000, "quantization": "int8", "skipped_short_mb": 4321}
    result = {"store": {"100000": measured, "1000000": skipped}}
    text = table(result)
    assert "recall@10 vs exact search" in text and "0.987" in text
    assert "store 1000000 pts int8: skipped" in text and "4,321" in text
    assert len(plot(result, tmp_path)) == 3  # the latency plot leaves the skipped scenario out
