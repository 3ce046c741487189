"""The bench's outputs: a table on stdout, JSON, and PNG plots (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from rag_streams.errors import CliError

__all__ = ["plot", "table", "write_json"]


def _get(result: dict[str, Any], path: str) -> Any:
    node: Any = result
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


ROWS: list[tuple[str, str, str]] = [
    ("ceiling: bare encode", "ceiling.chunks_per_s", "chunks/s"),
    ("naive loop (no Kafka)", "naive.chunks_per_s", "chunks/s"),
    ("pipeline first ingest", "pipeline.chunks_per_s", "chunks/s"),
    ("pipeline / ceiling", "pipeline.ratio_to_ceiling", "x"),
    ("  steady (after the first result)", "pipeline.steady_ratio_to_ceiling", "x"),
    ("  model busy during the ingest", "pipeline.model_busy_fraction", "x"),
    ("  CPU the cores had (cores x wall)", "pipeline.cpu.capacity_s", "s"),
    ("  CPU used: whole machine", "pipeline.cpu.machine_busy_s", "s"),
    ("    worker (all roles)", "pipeline.cpu.worker_s", "s"),
    ("      its event loop (main thread)", "pipeline.cpu.worker_main_thread_s", "s"),
    ("      its model and store threads", "pipeline.cpu.worker_other_threads_s", "s"),
    ("      bare encode of the corpus", "ceiling.cpu_s", "s"),
    ("  cores the model had: in the pipeline", "pipeline.cpu.model_threads_cores", "cores"),
    ("                       bare encode", "ceiling.cores", "cores"),
    ("    Kafka broker", "pipeline.cpu.kafka_s", "s"),
    ("    bench (publish, polls)", "pipeline.cpu.bench_s", "s"),
    ("freshness idle p50", "freshness.idle.p50_s", "s"),
    ("freshness idle p95", "freshness.idle.p95_s", "s"),
    ("freshness idle p99", "freshness.idle.p99_s", "s"),
    ("freshness 50% load p50", "freshness.loaded.p50_s", "s"),
    ("freshness 50% load p99", "freshness.loaded.p99_s", "s"),
    ("noisy neighbour: victim p99", "fairness.victim_freshness_p99_s", "s"),
    ("  ratio to idle p99", "fairness.ratio_to_idle", "x"),
    ("  bulk load embedded at", "fairness.bulk_chunks_per_s", "chunks/s"),
    ("re-ingest unchanged", "reingest.unchanged.seconds", "s"),
    ("  faster than first ingest", "reingest.unchanged.ratio", "x"),
    ("re-ingest 5% edited", "reingest.edited.seconds", "s"),
    ("  faster than first ingest", "reingest.edited.ratio", "x"),
    ("HTTP query cold p50", "query.http.cold.p50_ms", "ms"),
    ("HTTP query cold p99", "query.http.cold.p99_ms", "ms"),
    ("HTTP query cached p99", "query.http.cached.p99_ms", "ms"),
    ("worker peak RSS", "worker.peak_rss_mb", "MiB"),
]


def table(result: dict[str, Any]) -> str:
    lines = [f"{'measure':<34}{'value':>14}  unit", "-" * 56]
    for label, path, unit in ROWS:
        lines.append(f"{label:<34}{_fmt(_get(result, path)):>14}  {unit}")
    for size, store in sorted((result.get("store") or {}).items(), key=lambda kv: int(kv[0])):
        head = f"store {size} pts{' ' + store['quantization'] if store.get('quantization', 'none') != 'none' else ''}"
        if "skipped_short_mb" in store:
            lines.append(f"{head + ': skipped, MiB short':<34}{_fmt(store['skipped_short_mb']):>14}  MiB")
            continue
        lines.append(f"{head + ': query p50':<34}{_fmt(_get(store, 'query_ms.p50_ms')):>14}  ms")
        lines.append(f"{'  query p99':<34}{_fmt(store.get('query_p99_ms')):>14}  ms")
        lines.append(f"{'  recall@10 vs exact search':<34}{_fmt(store.get('recall_at_10'), 3):>14}  x")
        lines.append(f"{'  HNSW build':<34}{_fmt(store.get('index_build_s')):>14}  s")
        lines.append(f"{'  filtered query p99':<34}{_fmt(_get(store, 'filtered_query_ms.p99_ms')):>14}  ms")
        lines.append(f"{'  cleanup (per doc update) p50':<34}{_fmt(_get(store, 'cleanup_ms.p50_ms')):>14}  ms")
        lines.append(f"{'  read-your-writes check p50':<34}{_fmt(_get(store, 'doc_versions_ms.p50_ms')):>14}  ms")
    m = result.get("machine", {})
    lines.append("-" * 56)
    lines.append(
        f"machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory_gb')} GiB, "
        f"torch threads {m.get('torch_threads')}, device {m.get('device')}"
    )
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


def plot(result: dict[str, Any], folder: Path) -> list[Path]:
    """freshness CDF, throughput over time, query latency vs store size; returns the files."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise CliError("--plot needs matplotlib: pip install 'rag-streams[bench]'") from exc
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    raw = result.get("raw", {})

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("idle", "loaded", "victim"):
        xs = sorted(raw.get(f"freshness_{name}_s", []))
        if xs:
            ax.step(xs, [(i + 1) / len(xs) for i in range(len(xs))], where="post", label=name)
    ax.set(xlabel="produce → searchable (s)", ylabel="fraction of updates", title="Freshness CDF")
    ax.grid(alpha=0.3)
    ax.legend()
    out.append(_save(fig, folder / "freshness_cdf.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    series = raw.get("ingest_series", [])
    if series:
        ax.plot([t for t, _ in series], [n for _, n in series], label="pipeline: chunks indexed")
    ceiling = _get(result, "ceiling.chunks_per_s")
    if ceiling and series:
        end = series[-1][0]
        ax.plot([0, end], [0, ceiling * end], "--", label="ceiling (bare encode)")
    ax.set(xlabel="seconds since first publish", ylabel="chunks", title="First ingest: throughput over time")
    ax.grid(alpha=0.3)
    ax.legend()
    out.append(_save(fig, folder / "throughput.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    stores = sorted((result.get("store") or {}).items(), key=lambda kv: int(kv[0]))
    stores = [(size, v) for size, v in stores if "query_ms" in v]  # not the scenarios skipped for memory
    for key, label in (("query_ms", "query"), ("filtered_query_ms", "query filtered by doc_id")):
        sizes = [int(s) for s, _ in stores]
        ax.plot(sizes, [v[key].get("p99_ms") for _, v in stores], "o-", label=f"{label} p99")
        ax.plot(sizes, [v[key].get("p50_ms") for _, v in stores], "o--", label=f"{label} p50")
    ax.set(xscale="log", yscale="log", xlabel="points in the collection", ylabel="ms", title="Store query latency")
    ax.grid(alpha=0.3)
    ax.legend()
    out.append(_save(fig, folder / "query_latency.png"))
    return out


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
