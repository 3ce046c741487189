"""`rag-streams bench --quick` end to end: its own Kafka broker, Redis and worker, the real model.

It asserts what the bench measured is consistent (every chunk indexed, the unchanged re-ingest
ran no model, every freshness probe and question answered), never a speed: a benchmark measures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration


def test_quick_bench_measures_every_figure_and_writes_json_and_plots(tmp_path: Path) -> None:
    corpus = Path(str(resources.files("rag_streams") / "sample_corpus"))
    out, plots = tmp_path / "bench.json", tmp_path / "plots"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") or k == "RAG_KAFKA_HOME"}
    args = ["bench", "--quick", "--corpus", str(corpus), "--json", str(out), "--plot", str(plots)]
    proc = subprocess.run(
        [sys.executable, "-m", "rag_streams.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = orjson.loads(out.read_bytes())
    chunks = r["corpus"]["chunks"]
    assert r["corpus"]["documents"] == len([p for p in corpus.iterdir() if p.is_file()])
    assert r["ceiling"]["chunks"] == chunks and r["ceiling"]["chunks_per_s"] > 0
    assert r["naive"]["chunks"] == chunks
    assert r["pipeline"]["chunks"] == r["pipeline"]["points_stored"] == chunks
    assert r["warm_up"]["seconds"] > 0 and r["ceiling"]["first_pass_chunks_per_s"] > 0 and r["ceiling"]["cpu_s"] > 0
    cpu = r["pipeline"]["cpu"]  # where the cores' time went during the first ingest
    assert 0 < cpu["worker_s"] <= cpu["capacity_s"] and cpu["kafka_s"] > 0 and cpu["bench_s"] > 0
    assert cpu["machine_busy_s"] >= cpu["worker_s"] - 0.1
    assert r["pipeline"]["ratio_to_ceiling"] == round(r["pipeline"]["chunks_per_s"] / r["ceiling"]["chunks_per_s"], 3)
    assert r["settings"]["processing_guarantee"] == "exactly_once"
    assert r["freshness"]["idle"]["n"] == 10 and r["freshness"]["loaded"]["n"] == 10
    assert 0 < r["freshness"]["idle"]["p50_s"] <= r["freshness"]["idle"]["p99_s"]
    assert r["freshness"]["loaded"]["offered_chunks"] > 0
    unchanged, edited = r["reingest"]["unchanged"], r["reingest"]["edited"]
    assert unchanged["embed_skipped"] == chunks  # the unchanged corpus ran no model
    assert unchanged["documents_retagged"] == r["corpus"]["documents"]  # one retag per document
    assert unchanged["points_stored"] == chunks and edited["embed_skipped"] < edited["chunks"]
    assert unchanged["ratio"] > 0 and edited["ratio"] > 0
    http = r["query"]["http"]
    assert http["cache"] == "redis" and http["cache_hits"] == http["questions"] > 0
    assert http["cold"]["n"] == http["cached"]["n"] == http["questions"]
    assert list(r["store"]) == ["10000"] and r["store"]["10000"]["points"] == 10_000
    assert r["store"]["10000"]["query_p99_ms"] > 0 and r["store"]["10000"]["cleanup_ms"]["n"] == 10
    assert 0.0 <= r["store"]["10000"]["recall_at_10"] <= 1.0 and r["store"]["10000"]["quantization"] == "none"
    assert r["worker"]["peak_rss_mb"] >= r["worker"]["rss_mb"] > 0
    assert r["machine"]["cores"] and r["versions"]["faust-streaming"] != "not installed"
    assert sorted(p.name for p in plots.iterdir()) == ["freshness_cdf.png", "query_latency.png", "throughput.png"]
    assert "pipeline / ceiling" in proc.stdout and "freshness idle p99" in proc.stdout
