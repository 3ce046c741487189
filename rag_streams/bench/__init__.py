"""``rag-streams bench`` (SPEC §9): one command that measures the pipeline against its ceiling.

In one run, on one machine and one real text corpus: the model's bare ``encode`` throughput (the
ceiling), a naive single-process loop, the pipeline on a real Kafka broker with the configured
processing guarantee (first ingest, freshness idle and at half load, re-ingest unchanged and 5%
edited), HTTP query latency cold and cached, the embedded store at 10k (and 100k) points, and the
worker's peak RSS. A benchmark measures; no test asserts a speed.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_streams.settings import Settings

__all__ = ["BenchOptions", "run_bench"]


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False
    json_path: Path | None = None
    plot_dir: Path | None = None
    corpus_dir: Path | None = None
    #: the store scenarios' largest size (None: all; the 1M one took 15 min and 13 GiB on 2 shared cores)
    max_points: int | None = None
    #: the noisy neighbour's lane: ``bulk`` (``publish --bulk``) or ``interactive`` (the figure without the lane)
    fairness_lane: str = "bulk"

    @property
    def target_chunks(self) -> int:
        return 500 if self.quick else 2000

    @property
    def freshness_samples(self) -> int:
        return 10 if self.quick else 40

    @property
    def store_scenarios(self) -> tuple[tuple[int, str], ...]:
        """(points, quantization) of each embedded-store measurement."""
        every = ((10_000, "none"),) if self.quick else ((10_000, "none"), (100_000, "none"), (1_000_000, "int8"))
        return tuple((n, q) for n, q in every if self.max_points is None or n <= self.max_points)

    @property
    def store_sizes(self) -> tuple[int, ...]:
        return tuple(n for n, _ in self.store_scenarios)

    @property
    def questions(self) -> int:
        return 30 if self.quick else 100


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def edit(text: str, n: int) -> str:
    """A document edited in the middle: a sentence inserted at a paragraph or line break."""
    middle = len(text) // 2
    cut = text.find("\n", middle)
    cut = middle if cut < 0 else cut
    return f"{text[:cut]}\nRevision {n}: this paragraph was edited after the first ingest.{text[cut:]}"


async def _run(settings: Settings, options: BenchOptions, workdir: Path) -> dict[str, Any]:
    from rag_streams.adapters.embedding import SentenceTransformerEmbedder
    from rag_streams.adapters.producer import DocumentProducer
    from rag_streams.bench import offline
    from rag_streams.bench.corpus import Document, corpus_from_dir, installed_descriptions
    from rag_streams.bench.fairness import noisy_neighbour
    from rag_streams.bench.online import Online
    from rag_streams.bench.stack import Stack
    from rag_streams.bench.stats import machine, memory_mb, percentiles, versions

    result: dict[str, Any] = {"quick": options.quick, "settings": _settings_summary(settings)}
    source = corpus_from_dir(options.corpus_dir) if options.corpus_dir else installed_descriptions()
    _say(f"loading the model ({settings.embed_device}) and chunking the corpus ...")
    embedder = SentenceTransformerEmbedder(
        settings.embed_model, device=settings.embed_device, batch_size=settings.embed_batch
    )
    target = None if options.corpus_dir and not options.quick else options.target_chunks
    docs, chunks = offline.chunk_corpus(source, embedder, settings, target)
    per_doc = [sum(1 for c in chunks if c.doc_id == d.doc_id) for d in docs]
    result["corpus"] = {
        "source": str(options.corpus_dir) if options.corpus_dir else "installed distributions' descriptions",
        "documents": len(docs),
        "chunks": len(chunks),
        "chars": sum(len(d.text) for d in docs),
    }
    result["machine"], result["versions"] = machine(settings.embed_device), versions()
    _say(f"{len(docs)} documents, {len(chunks)} chunks; ceiling (bare encode, batch {settings.embed_batch}) ...")
    # A process's first pass over the corpus is slower (~10% here: the model meets each batch shape
    # for the first time): the ceiling is the second pass, the worker is warmed likewise below.
    first_pass = offline.ceiling(embedder, [c.text for c in chunks], settings.embed_batch)
    result["ceiling"] = offline.ceiling(embedder, [c.text for c in chunks], settings.embed_batch)
    result["ceiling"]["first_pass_chunks_per_s"] = first_pass["chunks_per_s"]
    _say(f"ceiling {result['ceiling']['chunks_per_s']:.1f} chunks/s; naive loop ...")
    result["naive"] = await offline.naive_loop(docs, embedder, settings)
    questions = [" ".join(c.text.split()[:12]) for c in chunks[:: max(1, len(chunks) // options.questions)]]
    questions = list(dict.fromkeys(questions))[: options.questions]
    edited = [Document(d.doc_id, edit(d.text, 1)) if i % 20 == 0 else d for i, d in enumerate(docs)]
    edited_chunks = len(offline.chunk_corpus(edited, embedder, settings, None)[1])

    result["store"] = {}
    for size, quantization in options.store_scenarios:
        short = offline.memory_short_mb(size)
        if short:
            _say(f"skipping the store at {size:,} points: {short:,} MiB more memory needed")
            result["store"][str(size)] = {"points": size, "quantization": quantization, "skipped_short_mb": short}
            continue
        _say(f"embedded store at {size:,} synthetic points ({quantization}) ...")
        result["store"][str(size)] = await offline.store_at_size(
            size, queries=30 if options.quick else 500, updates=10, quantization=quantization
        )

    stack = Stack(settings, workdir / "stack")
    _say(f"starting Kafka {settings.kafka_version} on {stack.kafka.bootstrap}, a worker on :{stack.port} ...")
    raw: dict[str, Any] = {}
    try:
        await stack.start()
        async with DocumentProducer(stack.settings) as producer:
            run = Online(stack, producer)
            _say("warm-up: the worker's model meets the corpus's batch shapes (its documents, another tenant) ...")
            warm = await run.ingest(
                [Document(f"warm/{d.doc_id}", d.text) for d in docs], len(chunks), tenant="bench-warm"
            )
            result["warm_up"] = {k: warm[k] for k in ("seconds", "chunks_per_s")}
            _say(f"first ingest of {len(chunks)} chunks ...")
            first = await run.ingest(docs, len(chunks))
            raw["ingest_series"] = first.pop("series")
            _say("the ceiling again, right after (this machine drifts: the ratio uses the mean of both) ...")
            after = offline.ceiling(embedder, [c.text for c in chunks], settings.embed_batch)
            before = result["ceiling"]
            result["ceiling"] = {
                **before,
                "seconds": round(before["seconds"] + after["seconds"], 2),
                "chunks_per_s": (before["chunks_per_s"] + after["chunks_per_s"]) / 2,
                "cpu_s": after["cpu_s"],  # right after the pipeline: what the worker's model needed of its CPU
                "cores": round(after["cpu_s"] / after["seconds"], 2),  # of the machine's, while alone on it
                "before_pipeline_chunks_per_s": before["chunks_per_s"],
                "after_pipeline_chunks_per_s": after["chunks_per_s"],
            }
            del embedder
            gc.collect()
            first["ratio_to_ceiling"] = round(first["chunks_per_s"] / result["ceiling"]["chunks_per_s"], 3)
            if first["steady_chunks_per_s"]:  # from the first chunk indexed: throughput without the fill
                first["steady_ratio_to_ceiling"] = round(
                    first["steady_chunks_per_s"] / result["ceiling"]["chunks_per_s"], 3
                )
            cpu = first["cpu"]
            if "worker_other_threads_s" in cpu:  # the cores the model had beside the event loop and broker
                cpu["model_threads_cores"] = round(cpu["worker_other_threads_s"] / cpu["wall_s"], 2)
            result["pipeline"] = first
            _say(f"pipeline {first['chunks_per_s']:.1f} chunks/s ({first['ratio_to_ceiling']}x); freshness idle ...")
            idle = await run.freshness(options.freshness_samples)
            raw["freshness_idle_s"] = idle
            _say("HTTP queries ...")
            result["query"] = {"http": await run.queries(questions)}
            _say("re-ingest, unchanged ...")
            unchanged = await run.ingest(docs, len(chunks))
            unchanged.pop("series")
            unchanged["ratio"] = round(first["seconds"] / unchanged["seconds"], 2)
            _say(f"unchanged in {unchanged['seconds']} s; re-ingest, 5% edited ...")
            changed = await run.ingest(edited, edited_chunks)
            changed.pop("series")
            changed["ratio"] = round(first["seconds"] / changed["seconds"], 2)
            result["reingest"] = {"unchanged": unchanged, "edited": changed}
            rate = 0.5 * first["chunks_per_s"]
            _say(f"freshness at 50% load ({rate:.1f} chunks/s of new documents) ...")
            loaded = await run.freshness_loaded(options.freshness_samples, docs, per_doc, rate)
            raw["freshness_loaded_s"] = loaded.pop("latencies")
            result["freshness"] = {
                "idle": percentiles(idle),
                "loaded": {**percentiles(raw["freshness_loaded_s"]), **loaded},
            }
            _say(f"noisy neighbour: {len(chunks)} chunks bulk-loaded ({options.fairness_lane} lane), probes ...")
            fair, raw["freshness_victim_s"] = await noisy_neighbour(
                run,
                [Document(f"bulk/{d.doc_id}", d.text) for d in docs],
                len(chunks),
                max(20, options.freshness_samples),
                float(result["freshness"]["idle"]["p99_s"]),
                lane=options.fairness_lane,
            )
            result["fairness"] = fair
            assert stack.worker is not None
            memory = memory_mb(stack.worker.pid)
            result["worker"] = {"peak_rss_mb": memory.get("peak_rss"), **{f"{k}_mb": v for k, v in memory.items()}}
    finally:
        await stack.stop()
    result["raw"] = raw
    return result


def _settings_summary(s: Settings) -> dict[str, Any]:
    keys = (
        "processing_guarantee",
        "embed_batch",
        "embed_window_s",
        "commit_interval_s",
        "chunk_tokens",
        "chunk_overlap",
        "topic_partitions",
        "embed_device",
    )
    return {k: getattr(s, k) for k in keys}


def run_bench(settings: Settings, options: BenchOptions) -> int:
    from rag_streams.bench.report import plot, table, write_json

    workdir = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    started = time.perf_counter()
    try:
        result = asyncio.run(_run(settings, options, workdir))
    finally:
        log = workdir / "stack" / "worker.log"
        if log.exists():
            kept = Path(tempfile.gettempdir()) / "rag-bench-worker.log"
            shutil.copyfile(log, kept)
            _say(f"worker log kept at {kept}")
        shutil.rmtree(workdir, ignore_errors=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result.setdefault("worker", {})["log"] = str(Path(tempfile.gettempdir()) / "rag-bench-worker.log")
    print(table(result))
    if options.json_path is not None:
        write_json(result, options.json_path)
        _say(f"JSON written to {options.json_path}")
    if options.plot_dir is not None:
        for path in plot(result, options.plot_dir):
            _say(f"plot written to {path}")
    return 0
