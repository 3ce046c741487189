"""``rag-streams``: the command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_streams.commands.pacing import add_pacing_arguments, pacer_of
from rag_streams.errors import CliError
from rag_streams.observability import tracing
from rag_streams.pipeline.stages import ROLES
from rag_streams.settings import Settings, SettingsError, load_settings, otel_environment

log = logging.getLogger(__name__)


KAFKA_HELP = """\
A single-node Apache Kafka broker (KRaft, broker and controller in one process) on 127.0.0.1,
for development, tests and the demo. Java 17+ and Maven must be on PATH.

  port        the broker listens on the port of the first host:port in RAG_KAFKA_BOOTSTRAP
              (default localhost:9092; the host must be localhost or 127.0.0.1)
  controller  the KRaft controller takes the next port (RAG_KAFKA_BOOTSTRAP's port + 1): keep it free
  jars        fetched once from Maven Central into $RAG_KAFKA_HOME/libs-$RAG_KAFKA_VERSION
              (RAG_KAFKA_HOME default: ~/.cache/rag-streams/kafka; RAG_KAFKA_VERSION default: 3.9.1)
  data        $RAG_KAFKA_HOME/node-<port>/: the log segments in data/, server.properties, the
              logs (server.log, stdout.log) and broker.pid; `down` stops the broker and keeps its
              data; delete the folder to start from an empty broker

actions: up (install, format on first start, start, wait until it serves), down, status (exit 1 when
not running)."""


def _settings_epilog() -> str:
    return "environment (RAG_*):\n" + "\n".join(f"  {v:<26} {doc} [{d}]" for v, d, doc in Settings.describe())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rag-streams",
        description="Streaming ingestion and retrieval for RAG on Kafka, Faust and Qdrant.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    k = sub.add_parser(
        "kafka",
        help="the local Apache Kafka broker (KRaft, loopback) for development",
        description=KAFKA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    k.add_argument("action", choices=["up", "down", "status"])

    t = sub.add_parser("topics", help="Kafka topics of the pipeline")
    t.add_argument("action", choices=["create"])

    w = sub.add_parser("worker", help="run a Faust worker for some or all stages")
    w.add_argument("--role", default=",".join(ROLES), help="comma list of chunk,embed,index (default: all)")

    sub.add_parser(
        "serve", help="the HTTP API alone (needs RAG_QDRANT_URL: an embedded store belongs to the index worker)"
    )

    pub = sub.add_parser("publish", help="publish files or folders as raw documents (doc_id = relative path)")
    pub.add_argument("--tenant", required=True)
    pub.add_argument("--version", type=int, default=None, help="document version (default: a monotonic clock)")
    add_pacing_arguments(pub, "documents sent")
    pub.add_argument(
        "--bulk",
        action="store_true",
        help="to the bulk lane ({prefix}.documents.raw.bulk): embedded while updates leave the model idle",
    )
    pub.add_argument("paths", nargs="+", type=Path)

    d = sub.add_parser("delete", help="publish a DELETE of a document")
    d.add_argument("--tenant", required=True)
    d.add_argument("--version", type=int, default=None)
    d.add_argument("doc_id")

    s = sub.add_parser("search", help="search a tenant's documents through the query API")
    s.add_argument("--tenant", required=True)
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--json", action="store_true", help="print the API's JSON answer")
    s.add_argument("--api-key", default=None, help="bearer key (when the API requires one)")
    s.add_argument("question")

    v = sub.add_parser("verify", help="audit a tenant's collection against rag.documents.latest (exit 1 on drift)")
    v.add_argument("--tenant", required=True)
    v.add_argument("--repair", action="store_true", help="replay the documents that drifted through the pipeline")
    v.add_argument("--api-key", default=None, help="bearer key for the index worker's API (embedded Qdrant)")

    r = sub.add_parser(
        "reindex", help="rebuild a tenant's collection from rag.documents.latest into __v{n+1}, then flip the alias"
    )
    r.add_argument("--tenant", required=True)
    r.add_argument("--model", default=None, help="sentence-transformers name or path (default: the current one)")
    r.add_argument("--api-key", default=None, help="bearer key for the index worker's API (embedded Qdrant)")
    add_pacing_arguments(r, "of the tenant's documents replayed")

    bk = sub.add_parser(
        "backup", help="write a tenant's points (vectors, payloads), model and replay offsets to DIR (Parquet + JSON)"
    )
    bk.add_argument("--tenant", required=True)
    bk.add_argument("--to", required=True, type=Path, metavar="DIR", help="a new or empty folder")
    bk.add_argument("--api-key", default=None, help="bearer key for the index worker's API (embedded Qdrant)")

    rs = sub.add_parser(
        "restore", help="rebuild a tenant's collection from a backup (no embedding), then catch up from its offsets"
    )
    rs.add_argument("--from", dest="source", required=True, type=Path, metavar="DIR", help="a folder `backup` wrote")
    rs.add_argument("--api-key", default=None, help="bearer key for the index worker's API (embedded Qdrant)")

    lg = sub.add_parser(
        "lag", help="consumer lag per group, topic and partition; throughput, time to drain, replicas advised"
    )
    lg.add_argument("--json", action="store_true", help="print the report as JSON")
    lg.add_argument("--interval", type=float, default=5.0, help="seconds between the two offset samples [5]")
    lg.add_argument(
        "--drain-target", type=float, default=300.0, help="drain the lag within this many seconds (replicas) [300]"
    )

    c = sub.add_parser(
        "canary",
        help="publish the canary document to RAG_CANARY_TENANT, check a known question cites it (exit 1 if not)",
    )
    c.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for the citation [RAG_CANARY_TIMEOUT_S]"
    )
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.add_argument("--api-key", default=None, help="bearer key of the canary tenant (default: from RAG_API_KEYS)")

    sub.add_parser("demo", help="start Kafka and a worker, ingest the sample corpus, answer a question")
    sub.add_parser(
        "migrate-store",
        help="copy the old embedded store (qdrant-client local mode) into the Qdrant Edge store, vectors included",
    )

    b = sub.add_parser(
        "bench",
        help="measure the pipeline against the model's ceiling: throughput, freshness, re-ingest, queries, memory",
    )
    b.add_argument("--quick", action="store_true", help="a few minutes: ~500 chunks, 10 freshness samples, 10k points")
    b.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the results as JSON")
    b.add_argument("--plot", type=Path, default=None, metavar="DIR", help="draw PNG plots into DIR (matplotlib)")
    b.add_argument("--corpus", type=Path, default=None, metavar="DIR", help="text files to use instead of the default")
    b.add_argument(
        "--max-points",
        type=int,
        default=None,
        metavar="N",
        help="skip the embedded-store scenarios above N points (the full bench's 1M int8 one took 15 min and"
        " 13 GiB on 2 shared cores: load 6 min, HNSW build 9 min)",
    )
    b.add_argument(
        "--fairness-lane",
        choices=("bulk", "interactive"),
        default="bulk",
        help="how the noisy neighbour publishes its bulk load (interactive: the figure without the bulk lane;"
        " with RAG_BULK_MIN_CHUNKS=0, or its large documents still take it)",
    )
    from rag_streams.commands.plan import add_arguments as plan_arguments

    plan_arguments(sub.add_parser("plan", help="capacity plan for many tenants: partitions, memory, disk, nodes, p99"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_progress_bars(sys.stderr)  # before tqdm or huggingface_hub is imported: both read it then
    try:
        settings = load_settings()
        tracing.configure(otel_environment())  # on when the OTEL_* variables name an exporter (docs/tracing.md)
        return _dispatch(args, settings) or 0
    except KeyboardInterrupt:
        return 130
    except (CliError, SettingsError) as exc:
        print(f"rag-streams: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from rag_streams.errors import RagError

        known = isinstance(exc, (RagError, OSError, ConnectionError)) or type(exc).__module__.startswith(
            ("aiokafka", "aiohttp", "rag_streams")
        )
        if not known:
            raise
        print(f"rag-streams: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    from rag_streams.commands import ops as commands

    if args.command == "kafka":
        return commands.kafka(settings, args.action)
    if args.command == "topics":
        return commands.topics_create(settings)
    if args.command in ("worker", "serve"):
        roles = [] if args.command == "serve" else _roles(args.role)
        from rag_streams.commands.worker import run_worker

        return run_worker(settings, roles, serve_api=args.command == "serve" or "index" in roles)
    if args.command == "publish":
        pacer = pacer_of(args, settings.window_timezone)
        return asyncio.run(commands.publish(settings, args.tenant, args.paths, args.version, pacer, bulk=args.bulk))
    if args.command == "delete":
        return asyncio.run(commands.delete(settings, args.tenant, args.doc_id, args.version))
    if args.command == "search":
        return asyncio.run(commands.search(settings, args.tenant, args.question, args.k, args.json, args.api_key))
    if args.command == "verify":
        return asyncio.run(commands.verify(settings, args.tenant, args.repair, args.api_key))
    if args.command == "reindex":
        from rag_streams.commands.reindex import reindex

        return asyncio.run(
            reindex(settings, args.tenant, args.model, args.api_key, pacer_of(args, settings.window_timezone))
        )
    if args.command in ("backup", "restore"):
        from rag_streams.commands import backup as commands_backup

        if args.command == "backup":
            return asyncio.run(commands_backup.backup(settings, args.tenant, args.to, args.api_key))
        return asyncio.run(commands_backup.restore(settings, args.source, args.api_key))
    if args.command == "lag":
        return asyncio.run(commands.lag(settings, args.interval, args.drain_target, args.json))
    if args.command == "canary":
        from rag_streams.observability.canary import command

        return asyncio.run(command(settings, args.timeout, args.json, args.api_key))
    if args.command == "migrate-store":
        from rag_streams.adapters.store.open import migrate_local_store

        migrate_local_store(settings)
        return 0
    if args.command == "demo":
        from rag_streams.commands.demo import run_demo

        return run_demo(settings)
    if args.command == "bench":
        from rag_streams.bench import BenchOptions, run_bench

        options = BenchOptions(args.quick, args.json, args.plot, args.corpus, args.max_points, args.fairness_lane)
        return run_bench(settings, options)
    if args.command == "plan":
        from rag_streams.commands.plan import run_plan

        return run_plan(args)
    raise CliError(f"unknown command {args.command}")


def _roles(text: str) -> list[str]:
    roles = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise CliError(f"--role: expected a comma list of {', '.join(ROLES)}, got {text!r}")
    return roles


def quiet_progress_bars(stream: Any) -> None:
    """No progress bars (tqdm: sentence-transformers' "Batches", transformers' and huggingface_hub's
    loading bars, the CLI's own) when ``stream`` is not a terminal: they would write carriage returns
    and escape codes into the logs. tqdm and huggingface_hub read these variables when imported, so
    this runs first. An explicit TQDM_DISABLE / HF_HUB_DISABLE_PROGRESS_BARS in the environment wins."""
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


if __name__ == "__main__":
    sys.exit(main())
