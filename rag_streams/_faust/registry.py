"""The register of every Faust/aiokafka work-around: one entry each, numbered 1..N without gaps.

Each entry names what it patches, the upstream report it corresponds to (or that there is none),
the test in ``tests/upstream/`` that pins the Faust behaviour it works around (it fails with
"work-around N: Faust no longer shows this; remove or re-verify it" once Faust changes), and the
versions it was verified on. ``install_all()`` (``rag_streams._faust``) installs the method patches
in :data:`INSTALL_ORDER`; the others are applied where ``where`` says.

Numbers 1-9 and 11-15 are the ones the code, README and commit history have always used; 10, 16, 17
and 18 were unnumbered work-arounds in cli.py and app.py, numbered when this register was made.
Whoever upgrades Faust: change :data:`VERIFIED` only after ``pytest tests/upstream tests/unit`` and
the integration tests pass on the new versions, and remove each work-around whose upstream test
says Faust no longer shows the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["INSTALL_ORDER", "NOT_REPORTED", "VERIFIED", "WORK_AROUNDS", "WorkAround", "by_number"]

NOT_REPORTED = "not reported upstream"
# Exact versions every work-around below was verified on (setup.cfg and constraints.txt pin the same).
VERIFIED: dict[str, tuple[str, ...]] = {
    "faust-streaming": ("0.15.3",),
    "aiokafka": ("0.14.0",),
    "mode-streaming": ("0.7.1",),
}
_ISSUES = "https://github.com/faust-streaming/faust/issues/"


@dataclass(frozen=True)
class WorkAround:
    number: int
    title: str
    patches: tuple[str, ...]  # the Faust/aiokafka/mode symbols replaced or worked around
    upstream: str  # URL of the matching upstream issue/PR, or NOT_REPORTED (a "related:" prefix: close, not the same)
    pinned_by: tuple[str, ...]  # tests/upstream/<file>::<test> showing the upstream behaviour
    where: str  # the module (or call site) that holds it
    install: str | None = None  # name of the installing function in ``where``; None: applied at the call site
    depends_on: tuple[int, ...] = ()  # work-arounds it relies on (installed or applied before it)
    verified: tuple[tuple[str, str], ...] = tuple((pkg, vs[-1]) for pkg, vs in VERIFIED.items())

    def installer(self) -> Callable[[], Any]:
        """The installing function (imported on demand: this module imports no Faust code)."""
        if self.install is None:
            raise LookupError(f"work-around {self.number} is applied at its call site ({self.where})")
        module = __import__(self.where.removesuffix(".py").replace("/", "."), fromlist=[self.install])
        installer: Callable[[], Any] = getattr(module, self.install)
        return installer


_C, _R = "rag_streams/_faust/compat.py", "rag_streams/_faust/recovery.py"
_TM = "faust.transport.consumer.TransactionManager"
_UP = "tests/upstream/"

WORK_AROUNDS: tuple[WorkAround, ...] = (
    WorkAround(
        1,
        "take_events() batches run outside any event's context: acting_on() makes one current",
        ("faust.streams.Stream.take_events", "faust.streams._current_event"),
        _ISSUES + "497",
        (_UP + "test_streams.py::test_take_events_leaves_no_current_event",),
        _C,
    ),
    WorkAround(
        2,
        "sends go through the transaction of the event's source partition, not the destination's",
        (_TM + ".send",),
        "related: " + _ISSUES + "177",
        (_UP + "test_transactions.py::test_faust_alone_sends_in_the_destination_topics_transaction",),
        _C,
        "install_source_transactions",
        depends_on=(1,),
    ),
    WorkAround(
        3,
        "local table stores are discarded before an exactly_once worker starts",
        ("faust.stores.rocksdb.Store._set",),
        NOT_REPORTED,
        (_UP + "test_tables.py::test_faust_rocksdb_store_writes_at_once",),
        "rag_streams/cli.py (run_worker: discard_local_tables)",
    ),
    WorkAround(
        4,
        "stream partitions resume after the seek and the queue clearing when recovery completes",
        ("faust.tables.recovery.Recovery.on_recovery_completed", "faust.tables.recovery.Recovery._resume_streams"),
        "related: " + _ISSUES + "596",
        (_UP + "test_table_recovery.py::test_faust_alone_drops_what_the_seek_fetched",),
        _C,
        "install_ordered_stream_resume",
    ),
    WorkAround(
        5,
        "open transactions commit when partitions are revoked",
        (_TM + ".on_partitions_revoked",),
        _ISSUES + "323",
        (_UP + "test_transactions.py::test_faust_alone_only_flushes_on_revoke",),
        _C,
        "install_commit_on_revoke",
    ),
    WorkAround(
        6,
        "buffered changelog records are sent into the transaction before each commit",
        (_TM + ".commit", "faust.transport.producer.ProducerBuffer._send_pending"),
        NOT_REPORTED,
        (
            _UP + "test_transactions.py::test_faust_alone_commits_while_changelog_records_wait_in_the_buffer",
            _UP + "test_transactions.py::test_aiokafka_refuses_to_commit_offsets_outside_a_transaction",
        ),
        _C,
        "install_buffer_drain_before_commit",
        depends_on=(5,),
    ),
    WorkAround(
        7,
        "transactional ids are named by the consuming stage, not by Faust's partition-count groups",
        ("faust.assignor.partition_assignor.PartitionAssignor.group_for_topic",),
        NOT_REPORTED,
        (_UP + "test_transactions.py::test_faust_alone_gives_every_stage_of_a_partition_the_same_transactional_id",),
        _C,
        "install_stage_transactional_ids",
        depends_on=(2,),
    ),
    WorkAround(
        8,
        "table recovery takes changelog highwaters from the broker",
        ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._highwaters",),
        _ISSUES + "158",
        (_UP + "test_table_recovery.py::test_faust_alone_has_no_highwater_right_after_an_assignment",),
        _R,
        "install_broker_highwaters",
    ),
    WorkAround(
        9,
        "table recovery ends at the last committed record, not after Faust's 10-15 s escape",
        (
            "faust.tables.recovery.Recovery._build_highwaters",
            "faust.tables.recovery.Recovery._seek_offsets",
            "faust.tables.recovery.Recovery.on_start",
        ),
        "related: " + _ISSUES + "47",
        (_UP + "test_table_recovery.py::test_faust_alone_escapes_markers_only_after_two_timeouts",),
        _R,
        "install_recovery_end_watch",
        depends_on=(8,),
    ),
    WorkAround(
        10,
        "app.in_worker is set before the consumer exists, so exactly_once really uses transactions",
        ("faust.transport.consumer.Consumer.__init__ (in_transaction)", "faust.app.base.App.in_transaction"),
        NOT_REPORTED,
        (_UP + "test_app.py::test_faust_consumer_reads_in_transaction_once_when_created",),
        "rag_streams/cli.py (run_worker: app.in_worker = True)",
    ),
    WorkAround(
        11,
        "events whose work was cut off are not acked",
        ("faust.types.tuples.Message.ack", "faust.transport.consumer.Consumer.ack"),
        NOT_REPORTED,
        (_UP + "test_acks.py::test_faust_commits_every_acked_offset_of_a_batch",),
        "rag_streams/_faust/acks.py (redelivered_unless_done, used by the agents)",
    ),
    WorkAround(
        12,
        "no transactional commit falls between an event's outputs and its table writes",
        (_TM + ".commit", _TM + ".on_partitions_revoked"),
        NOT_REPORTED,
        (_UP + "test_transactions.py::test_faust_commits_from_a_timer_whatever_the_agents_are_doing",),
        "rag_streams/_faust/commit_gate.py",
        "install_commit_gate",
        depends_on=(1, 5, 6),
    ),
    WorkAround(
        13,
        "nothing fetched before a rebalance is processed or acked after it",
        (
            "faust.transport.consumer.Consumer._wait_next_records",
            "faust.transport.consumer.Consumer.getmany",
            "faust.transport.consumer.Consumer.ack",
            "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.seek_to_committed",
        ),
        NOT_REPORTED,
        (
            _UP + "test_fetch.py::test_faust_alone_hands_out_a_stale_batch_as_the_new_generations",
            _UP + "test_fetch.py::test_aiokafka_alone_leaves_a_partition_with_nothing_committed_where_it_is",
            _UP + "test_fetch.py::test_faust_alone_skips_the_records_of_a_partition_paused_meanwhile",
        ),
        "rag_streams/_faust/fetch.py",
        "install_fetch_generation_guard",
        depends_on=(9, 11),
    ),
    WorkAround(
        14,
        "acked offsets and gaps at or below the committed offset are forgotten before a commit",
        ("faust.transport.consumer.Consumer._new_offset",),
        NOT_REPORTED,
        (_UP + "test_commits.py::test_faust_alone_skips_every_other_commit_after_a_transaction_marker",),
        "rag_streams/_faust/commits.py",
        "install_committed_offsets_forgotten",
    ),
    WorkAround(
        15,
        "the livelock check skips partitions whose fetch position is not known yet",
        ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.verify_event_path",),
        NOT_REPORTED,
        (
            _UP + "test_livelock.py::test_aiokafka_asserts_on_the_position_of_a_partition_awaiting_reset",
            _UP + "test_livelock.py::test_faust_alone_crashes_verifying_a_partition_awaiting_reset",
        ),
        "rag_streams/_faust/livelock.py",
        "install_livelock_check_guard",
    ),
    WorkAround(
        16,
        "the worker's startup spinner is off (it writes cursor escape codes into logs)",
        ("mode.worker.Worker.spinner",),
        NOT_REPORTED,
        (_UP + "test_app.py::test_mode_worker_has_a_spinner_even_when_quiet",),
        "rag_streams/cli.py (faust_worker: worker.spinner = None)",
    ),
    WorkAround(
        17,
        "no table standby replicas (the leader drops standbys of tables it does not know)",
        ("faust.assignor.partition_assignor.PartitionAssignor.on_assignment", "table_standby_replicas"),
        NOT_REPORTED,
        (_UP + "test_app.py::test_faust_asserts_its_standby_assignment",),
        "rag_streams/pipeline/app.py (faust.App(table_standby_replicas=0))",
    ),
    WorkAround(
        18,
        "a worker refuses exactly_once without Kafka transactions (Faust falls back silently)",
        ("faust.app.base.App.in_transaction",),
        NOT_REPORTED,
        (_UP + "test_app.py::test_faust_falls_back_to_no_transactions_silently",),
        "rag_streams/pipeline/app.py (check_processing_guarantee task)",
        depends_on=(10,),
    ),
    WorkAround(
        19,
        "a revocation that closes no RocksDB database skips Faust's full garbage collection",
        ("faust.stores.rocksdb.Store.revoke_partitions",),
        NOT_REPORTED,
        (_UP + "test_tables.py::test_faust_rocksdb_store_collects_garbage_on_a_revoke_that_closes_nothing",),
        "rag_streams/_faust/stores.py",
        "install_empty_revoke_skip",
    ),
    WorkAround(
        20,
        "the table manager starts without Faust's fixed one-second sleep before it subscribes",
        ("faust.tables.manager.TableManager.on_start",),
        NOT_REPORTED,
        (_UP + "test_tables.py::test_faust_table_manager_sleeps_a_second_before_it_subscribes",),
        "rag_streams/_faust/startup.py",
        "install_no_start_sleep",
    ),
    WorkAround(
        21,
        "transactional commits count as commits for the livelock check (no false 'has not committed' errors)",
        (_TM + ".commit",),
        NOT_REPORTED,
        (
            _UP + "test_livelock.py::test_faust_alone_does_not_record_transactional_commits",
            _UP + "test_livelock.py::test_faust_alone_reports_a_partition_committed_only_in_transactions",
        ),
        "rag_streams/_faust/livelock.py",
        "install_transaction_commit_times",
    ),
    WorkAround(
        22,
        "a stream that waits by design (the bulk lane behind updates) is not reported as stalled",
        ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.verify_event_path",),
        NOT_REPORTED,
        (_UP + "test_livelock.py::test_faust_alone_reports_a_stream_waiting_behind_other_work_as_stalled",),
        "rag_streams/_faust/livelock.py",
        "install_yielding_streams",
    ),
    WorkAround(
        23,
        "a take's events are acked as each is handled (their outputs commit a model batch at a time)",
        ("faust.streams.Stream.take_events",),
        NOT_REPORTED,
        (
            _UP + "test_acks.py::test_faust_acks_a_take_only_when_all_of_it_is_handled",
            _UP + "test_acks.py::test_an_acked_message_is_not_acked_again",
        ),
        "rag_streams/_faust/acks.py (ack_handled, called by StageRuntime.handled)",
        depends_on=(11,),
    ),
)

# install_all()'s order (app.py's before this register): numeric, except the commit gate (12), which
# wraps TransactionManager.commit and on_partitions_revoked outermost and so goes last.
INSTALL_ORDER: tuple[int, ...] = (2, 4, 5, 6, 7, 8, 9, 13, 14, 15, 19, 20, 21, 22, 12)


def by_number(number: int) -> WorkAround:
    for entry in WORK_AROUNDS:
        if entry.number == number:
            return entry
    raise KeyError(number)
