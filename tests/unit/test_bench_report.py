"""`rag-streams bench`: its corpus, statistics, report and plots (the measuring run itself is an
integration test: tests/integration/test_bench_run.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import orjson
import pytest

from rag_streams.bench import BenchOptions, edit
from rag_streams.bench.corpus import MAX_CHARS, MIN_CHARS, corpus_from_dir, installed_descriptions
from rag_streams.bench.online import poll_interval
from rag_streams.bench.report import ROWS, plot, table, write_json
from rag_streams.bench.stack import free_port
from rag_streams.bench.stats import memory_mb, percentiles
from rag_streams.cli import main
from rag_streams.errors import CliError


def test_percentiles_are_nearest_rank_and_scaled() -> None:
    samples = [i / 100 for i in range(1, 101)]  # 0.01 .. 1.00 s
    p = percentiles(samples, 1000, "ms")
    assert p["n"] == 100
    assert p["p50_ms"] == 500.0 and p["p95_ms"] == 950.0 and p["p99_ms"] == 990.0 and p["max_ms"] == 1000.0
    assert percentiles([0.3])["p99_s"] == 0.3
    assert percentiles([]) == {"n": 0}


def test_the_default_corpus_is_real_text_in_a_stable_order() -> None:
    docs = installed_descriptions()
    assert len(docs) >= 5  # torch, faust, qdrant-client ... ship long descriptions
    assert [d.doc_id for d in docs] == sorted(d.doc_id for d in docs)
    assert len({d.doc_id for d in docs}) == len(docs)
    assert all(MIN_CHARS <= len(d.text) <= MAX_CHARS for d in docs)
    assert installed_descriptions() == docs


def test_a_corpus_folder_reads_text_files_and_skips_hidden_and_binary(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("alpha text")
    (tmp_path / "sub" / "b.txt").write_text("beta text")
    (tmp_path / ".hidden").write_text("secret")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00")
    assert [(d.doc_id, d.text) for d in corpus_from_dir(tmp_path)] == [
        ("a.md", "alpha text"),
        ("sub/b.txt", "beta text"),
    ]
    with pytest.raises(CliError, match="not a folder"):
        corpus_from_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CliError, match="no UTF-8 text"):
        corpus_from_dir(tmp_path / "empty")


def test_an_edit_inserts_a_sentence_in_the_middle() -> None:
    text = "first line\n" * 50
    edited = edit(text, 3)
    assert edited != text and "Revision 3:" in edited
    assert edited.startswith(text[: len(text) // 2]) and edited.endswith("first line\n")


def test_quick_is_small() -> None:
    quick, full = BenchOptions(quick=True), BenchOptions()
    assert quick.target_chunks < full.target_chunks
    assert quick.freshness_samples == 10 and quick.store_sizes == (10_000,)
    assert 100_000 in full.store_sizes


def result() -> dict:
    store = {
        "query_p99_ms": 3.5,
        "query_ms": {"p50_ms": 1.0, "p99_ms": 3.5},
        "filtered_query_ms": {"p50_ms": 0.5, "p99_ms": 1.5},
        "cleanup_ms": {"p50_ms": 2.0},
        "doc_versions_ms": {"p50_ms": 1.0},
    }
    return {
        "ceiling": {"chunks_per_s": 25.0},
        "pipeline": {"chunks_per_s": 24.0, "ratio_to_ceiling": 0.96},
        "freshness": {"idle": {"p50_s": 0.2, "p95_s": 0.3, "p99_s": 0.35}, "loaded": {"p99_s": 1.2}},
        "store": {"10000": store, "100000": {**store, "query_p99_ms": 4.5}},
        "machine": {"cpu_model": "test cpu", "cores": 2},
        "raw": {
            "freshness_idle_s": [0.2, 0.3],
            "freshness_loaded_s": [0.5, 1.2],
            "ingest_series": [(0.5, 3), (1.0, 20)],
        },
    }


def test_the_table_shows_every_row_and_the_machine() -> None:
    text = table(result())
    for label, _, _ in ROWS:
        assert label in text
    assert "0.96" in text and "0.35" in text and "4.50" in text and "test cpu" in text


def test_json_and_plots_are_written(tmp_path: Path) -> None:
    write_json(result(), tmp_path / "out" / "bench.json")
    assert orjson.loads((tmp_path / "out" / "bench.json").read_bytes())["pipeline"]["ratio_to_ceiling"] == 0.96
    files = plot(result(), tmp_path / "plots")
    assert {f.name for f in files} == {"freshness_cdf.png", "throughput.png", "query_latency.png"}
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files)


def test_memory_of_a_live_process() -> None:
    mem = memory_mb(os.getpid())
    assert mem["peak_rss"] >= mem["rss"] > 0 and mem["rss_anon"] > 0


def test_free_ports_are_distinct_and_span_free() -> None:
    a, b = free_port(2), free_port()
    assert b not in (a, a + 1)
    for port in (a, a + 1, b):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_bad_corpus_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--quick", "--corpus", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rag-streams: error: --corpus:") and "\n" not in err


def test_an_ingest_is_polled_more_often_as_its_end_nears() -> None:
    assert poll_interval(1.0, 0, 500) == 0.02  # 2% of the time elapsed, at least 20 ms
    assert poll_interval(20.0, 100, 500) == 0.25  # 2% of it, at most 250 ms
    # 480 of 500 done after 20 s: the rest should take 0.83 s, polled every quarter of that
    assert poll_interval(20.0, 480, 500) == pytest.approx(20 / 480 * 20 / 4)
    assert poll_interval(20.0, 499, 500) == 0.02
    assert poll_interval(20.0, 500, 500) == 0.02  # all handled: the store is read until it is exact
