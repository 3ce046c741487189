"""The Faust application: settings, topics in flow order, and the services agents use.

Agents live in ``agents/`` (installed as ``rag_streams.agents``), one module per stage;
tables in ``tables/``. Importing an agent module registers it, so a worker runs only the
stages of its roles.
"""

from __future__ import annotations

import logging

import faust

from rag_streams._faust import install_all
from rag_streams.diagnostics import log_stall_view
from rag_streams.services import Services
from rag_streams.settings import load_settings
from rag_streams.topics import TopicNames, max_message_bytes

log = logging.getLogger(__name__)
settings = load_settings()
install_all()  # every Faust work-around, in its one correct order (see rag_streams/_faust/registry.py)
names = TopicNames.for_prefix(settings.topic_prefix)

app = faust.App(
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
    # No standby replicas (work-around 17): each worker registers only its roles' tables (tables/versions.py), and
    # Faust's group leader puts standby partitions into the Kafka assignment only for tables it
    # knows itself, so a member whose standbys the leader dropped fails Faust's own assignment
    # check (AssertionError in PartitionAssignor.on_assignment) and never joins. Tables restore
    # from their compacted changelogs when partitions move.
    table_standby_replicas=0,
)


def _topic(name: str) -> faust.TopicT:
    # Raw bytes in and out: agents decode themselves so bad input can be dead-lettered.
    return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=settings.topic_partitions)


# Topics, in flow order.
raw_topic = _topic(names.raw)
latest_topic = _topic(names.latest)
chunks_topic = _topic(names.chunks)
embeddings_topic = _topic(names.embeddings)
deadletter_topic = _topic(names.deadletter)

services = Services(settings)


@app.task
async def check_processing_guarantee() -> None:
    """Refuse to run exactly_once without transactions (Faust falls back silently; work-around 18)."""
    wanted = settings.processing_guarantee == "exactly_once"
    actual = bool(app.consumer.in_transaction)
    log.info("processing guarantee %s: Kafka transactions %s", settings.processing_guarantee, "on" if actual else "off")
    if wanted != actual:
        await app.crash(RuntimeError(f"processing guarantee {settings.processing_guarantee} but transactions={actual}"))


if settings.log_level == "debug":  # what a stalled worker is doing, every 10 s (see diagnostics)
    app.timer(10.0)(log_stall_view(app))
