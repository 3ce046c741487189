"""The Faust application, built by :func:`create_app` from one :class:`Settings`.

Nothing happens at import: the CLI (or a test) parses the settings and calls ``create_app``, which
installs the Faust work-arounds, builds the App and its topics, and registers the agents and
tables of the worker's roles (the stage graph: :mod:`rag_streams.pipeline.stages`) and the HTTP API.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import faust

from rag_streams._faust import install_all
from rag_streams._faust.compat import transaction_group
from rag_streams._faust.livelock import yields_by_design
from rag_streams.adapters import codecs
from rag_streams.adapters.services import Services
from rag_streams.observability import index_health as index_health_monitor
from rag_streams.observability.diagnostics import log_stall_view
from rag_streams.pipeline.lanes import Lanes
from rag_streams.pipeline.runtime import StageRuntime
from rag_streams.pipeline.stages import GRAPH, ROLES, stage
from rag_streams.pipeline.topics import TopicNames, max_message_bytes
from rag_streams.settings import Settings

__all__ = ["Pipeline", "create_app"]
log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """One worker's app: its settings, the Faust App, the topics, the services, and what its roles
    registered (tables by name, agents by role)."""

    settings: Settings
    app: faust.App
    names: TopicNames
    services: Services
    roles: tuple[str, ...]
    topics: dict[str, Any] = field(default_factory=dict)  #: by TopicNames field: raw, latest, ...
    tables: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, Any] = field(default_factory=dict)
    lanes: Lanes = field(default_factory=Lanes)  #: the bulk lane waits while any stage has an update

    def topic(self, name: str) -> Any:
        """The topic of a TopicNames field (``raw``, ``raw_bulk``, ``latest``, ``chunks``, ``chunks_bulk``,
        ``embeddings``, ``deadletter``)."""
        return self.topics[name]

    def runtime(self, role: str) -> StageRuntime:
        return StageRuntime(role, self.app, self.settings, self.topics["deadletter"], self.lanes)

    def version_table(self, name: str, description: str, *, written_from: str) -> Any:
        """A version table (no default), co-partitioned with the topic ``written_from`` whose events
        write it; its changelog records commit in that source partition's transaction (work-around 7)."""
        if name not in self.tables:
            table = self.app.Table(name, default=None, partitions=self.settings.topic_partitions, help=description)
            for source in self.topic(written_from).topics:
                transaction_group(table.changelog_topic.get_topic_name(), source)
            self.tables[name] = table
        return self.tables[name]


def create_app(
    settings: Settings,
    *,
    roles: Iterable[str] = ROLES,
    http: bool = True,
    services: Services | None = None,
) -> Pipeline:
    """Build the worker's Faust app with the agents and tables of ``roles`` (none: the API alone)
    and, with ``http``, the HTTP API. Installs the Faust work-arounds (process-wide, once)."""
    install_all()  # every Faust work-around, in its one order (rag_streams/_faust/registry.py), once
    codecs.configure(settings)  # the Avro fingerprint order written, the raw topic's schema registry
    roles = tuple(roles)
    p = Pipeline(
        settings=settings,
        app=_faust_app(settings),
        names=TopicNames.for_prefix(settings.topic_prefix),
        services=services or Services(settings),
        roles=roles,
    )
    for name in ("raw", "raw_bulk", "latest", "chunks", "chunks_bulk", "embeddings", "deadletter"):
        # raw bytes in and out: agents decode themselves so bad input can be dead-lettered
        p.topics[name] = p.app.topic(
            getattr(p.names, name),
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )
    for spec in GRAPH:  # a bulk lane commits in its stage's transaction of the same partition
        if spec.bulk_input is not None and settings.bulk_lane:
            transaction_group(getattr(p.names, spec.bulk_input), getattr(p.names, spec.input))
            yields_by_design(p.app, getattr(p.names, spec.bulk_input), p.lanes.bulk_alive)  # work-around 22
    p.app.task(_check_processing_guarantee(p))
    if settings.log_level == "debug":  # what a stalled worker is doing, every 10 s (see diagnostics)
        p.app.timer(10.0)(log_stall_view(p.app))
    for role in roles:
        p.agents[role] = importlib.import_module(stage(role).agent).register(p)
    health = index_health_monitor.register(p) if "index" in roles else None  # its tables: the index stage's
    if http:
        from rag_streams.http import admin as api_admin
        from rag_streams.http import api
        from rag_streams.http import documents as api_documents
        from rag_streams.http import stats as api_stats
        from rag_streams.observability import canary, lag_export

        http_api = api.register(p)  # search, points, health, readiness, metrics, OpenAPI
        api_documents.register(http_api)  # publishing documents over HTTP
        if "index" in roles or not roles:  # the process that holds the store: collection admin for reindex
            api_admin.register(http_api)
        if health is not None:  # index health of a tenant (GET /v1/tenants/{t}/stats)
            api_stats.register(http_api, health)
        lag_export.register(p)  # the group leader exports consumer lag
        canary.register(p)  # RAG_CANARY_INTERVAL_S: the synthetic canary on the worker that answers searches
    return p


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        processing_guarantee=settings.processing_guarantee,
        store=settings.faust_store,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        consumer_group_instance_id=settings.group_instance_id,  # static membership (KIP-345) when set
        broker_commit_interval=settings.commit_interval_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        producer_acks=-1,
        producer_max_request_size=max_message_bytes(settings),
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_router_enabled=False,  # Faust's /router and /table pages: unused here, unauthenticated (table
        web_tables_enabled=False,  # data of every tenant), and outside the API's contract (GET /openapi.json)
        autodiscover=False,
        table_cleanup_interval=30.0,
        # No standby replicas (work-around 17): each worker registers only its roles' tables, and Faust's group leader
        # puts standby partitions into the Kafka assignment only for tables it knows itself, so a
        # member whose standbys the leader dropped fails Faust's own assignment check
        # (AssertionError in PartitionAssignor.on_assignment) and never joins. Tables restore from
        # their compacted changelogs when partitions move.
        table_standby_replicas=0,
    )


def _check_processing_guarantee(p: Pipeline) -> Any:
    async def check_processing_guarantee() -> None:
        """Refuse to run exactly_once without transactions (Faust falls back silently; work-around 18)."""
        wanted = p.settings.processing_guarantee == "exactly_once"
        actual = bool(p.app.consumer.in_transaction)
        guarantee = p.settings.processing_guarantee
        log.info("processing guarantee %s: Kafka transactions %s", guarantee, "on" if actual else "off")
        if wanted != actual:
            await p.app.crash(RuntimeError(f"processing guarantee {guarantee} but transactions={actual}"))

    return check_processing_guarantee
