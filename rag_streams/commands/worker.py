"""``rag-streams worker`` / ``serve``: check the topics and the Faust version, build the app of the
worker's roles (create_app) and run Faust's Worker until it is stopped; then close the services."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from rag_streams.errors import CliError
from rag_streams.settings import Settings

__all__ = ["check_topics", "faust_worker", "run_worker"]
log = logging.getLogger(__name__)


def run_worker(settings: Settings, roles: list[str], *, serve_api: bool) -> int:
    """Run a Faust worker with the agents of ``roles`` (and the HTTP API)."""
    from rag_streams._faust import check_versions

    if unverified := check_versions(settings.allow_unverified_faust):  # before any Faust patch is installed
        log.warning("running on unverified %s (RAG_ALLOW_UNVERIFIED_FAUST)", ", ".join(unverified))
    if serve_api and not roles and settings.qdrant_url is None:
        raise CliError("serve needs RAG_QDRANT_URL: with embedded Qdrant the index worker serves the API")
    from rag_streams.adapters.services import Services

    services = Services(settings)
    # importing torch/sentence-transformers and loading the model is the longest part of a start
    # (~6 s of CPU here): from now on, on a thread, overlapping the Kafka side (model_preload.py)
    preload = services.preload_model() if {"chunk", "embed"} & set(roles) or serve_api else None
    from rag_streams._faust.compat import discard_local_tables
    from rag_streams.observability.logs import configure_logging
    from rag_streams.pipeline.app import create_app

    pipeline = create_app(settings, roles=roles, services=services)  # the roles' agents, the HTTP API
    app, services = pipeline.app, pipeline.services
    # embedded Qdrant is locked by the index worker: other workers ask it for a tenant's model
    services.owns_store = "index" in roles or not roles or bool(settings.qdrant_url or settings.vector_store)
    if services.owns_store and not (settings.qdrant_url or settings.vector_store):
        from rag_streams.adapters.store.open import legacy_local_store

        if (legacy := legacy_local_store(settings)) is not None:
            raise CliError(
                f"{legacy} holds collections in the old embedded format (qdrant-client local mode); "
                "run `rag-streams migrate-store` once to copy them into the Qdrant Edge store"
            )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_format, settings.log_level)
    if roles:
        _check_topics(settings)
    # Faust's consumer reads app.in_transaction once, when it is created; the Worker only sets
    # in_worker in on_start, after that may already have happened. Set it first so exactly_once
    # really commits through transactions (work-around 10).
    app.in_worker = True
    if settings.processing_guarantee == "exactly_once" and discard_local_tables(Path(app.conf.tabledir)):
        log.info("local table stores removed: tables restore from their changelogs (work-around 3)")
    # override_logging=False: mode's Worker would otherwise replace configure_logging's handlers
    # (RAG_LOG_FORMAT=json) with its own console format.
    try:
        faust_worker(app, settings, services, model=preload).execute_from_commandline()
    except SystemExit:
        if preload is not None and preload.done() and (exc := preload.exception()) is not None:
            raise CliError(
                f"the embedding model ({settings.embed_model or 'packaged all-MiniLM-L6-v2'}) "
                f"cannot be loaded: {type(exc).__name__}: {exc}"
            ) from None
        raise
    return 0


def faust_worker(app: Any, settings: Settings, services: Any = None, model: Future[Any] | None = None) -> Any:
    """Faust's Worker for ``app``, quiet, with this process's logging left in place; once the app
    (agents, consumer, producers) has stopped it closes ``services`` (store, cache, model thread).
    If ``model`` (the model loading since the start) fails, the worker stops as on SIGTERM."""
    from faust.worker import Worker

    class RagWorker(Worker):  # type: ignore[misc]
        async def on_first_start(self) -> None:
            await super().on_first_start()
            if model is not None:
                self.add_future(self._stop_unless_loaded(model))

        async def _stop_unless_loaded(self, model: Future[Any]) -> None:
            try:
                await asyncio.wrap_future(model)
            except Exception:  # noqa: BLE001 - run_worker reports it in one line once stopped
                self._schedule_shutdown(signal.SIGTERM)

        async def on_shutdown(self) -> None:
            await super().on_shutdown()
            if services is not None:
                await services.close()

    worker: Any = RagWorker(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False, override_logging=False
    )
    # Faust's startup spinner writes cursor escape codes (hide/show, backspaces) even to a file or
    # pipe, quiet or not; with it off the worker logs "Ready" instead (work-around 16).
    worker.spinner = None
    return worker


def check_topics(settings: Settings, existing: Iterable[str]) -> None:
    """Refuse to start a worker whose pipeline topics are missing (``existing``: the broker's topics);
    Faust would otherwise run on with one "topic not found" error and process nothing."""
    from rag_streams.pipeline.topics import missing_topics

    missing = missing_topics(settings, existing)
    if missing:
        raise CliError(
            f"topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing on {settings.kafka_bootstrap}: "
            "run `rag-streams topics create` first"
        )


def _check_topics(settings: Settings) -> None:
    from rag_streams.adapters.kafka_admin import existing_topics

    try:
        existing = asyncio.run(existing_topics(settings))
    except Exception as exc:  # no broker yet: the worker waits for it as before, topics unchecked
        if not type(exc).__module__.startswith("aiokafka") and not isinstance(exc, OSError):
            raise
        log.warning("topics not checked: the broker did not answer (%s)", exc)
        return
    check_topics(settings, existing)
