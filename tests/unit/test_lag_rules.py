"""The pure parts of `rag-streams lag`: lag per partition, rates, time to drain, replicas advised."""

from __future__ import annotations

import math

import pytest

from rag_streams.observability.lag import consumers_per_topic
from rag_streams.rules.lag import Snapshot, advise_replicas, build_report, drain_seconds, partition_lag

STAGES = [("chunk", "raw"), ("embed", "chunks")]


def snap(t: float, committed: dict, end: dict, start: dict | None = None, **kw: object) -> Snapshot:
    return Snapshot(t, committed, start or dict.fromkeys(end, 0), end, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("committed", "start", "end", "lag"),
    [
        (None, 0, 40, 40),  # no worker ever ran: the group will start at the log start
        (None, 15, 40, 25),  # ... which retention may have moved
        (10, 0, 40, 30),
        (40, 0, 40, 0),
        (5, 20, 40, 20),  # committed offset deleted by retention: the consumer resets to the start
        (50, 0, 40, 0),  # never negative
    ],
)
def test_partition_lag(committed: int | None, start: int, end: int, lag: int) -> None:
    assert partition_lag(committed, start, end) == lag


def test_a_tail_of_transaction_markers_is_no_lag() -> None:
    # Faust commits the offset after its last record; the commit marker that follows stays behind.
    assert partition_lag(14, 0, 15) == 1
    assert partition_lag(14, 0, 15, empty_tail=True) == 0


def test_drain_seconds() -> None:
    assert drain_seconds(0, None) == 0.0
    assert drain_seconds(0, 0.0) == 0.0
    assert drain_seconds(100, None) is None
    assert drain_seconds(100, 0.0) is None
    assert drain_seconds(100, 20.0) == 5.0


@pytest.mark.parametrize(
    ("kw", "advised"),
    [
        # per replica 10/s (20/s over 2); needs 5/s incoming + 3000/300 = 15/s -> 2
        ({"lag": 3000, "incoming": 5.0, "throughput": 20.0, "consumers": 2}, 2),
        # needs 50 + 30000/300 = 150/s at 10/s a replica = 15, bounded by 8 partitions
        ({"lag": 30000, "incoming": 50.0, "throughput": 20.0, "consumers": 2}, 8),
        # nothing to do: one replica is enough, whatever runs now
        ({"lag": 0, "incoming": 0.0, "throughput": 0.0, "consumers": 4}, 1),
        ({"lag": 0, "incoming": 0.0, "throughput": 5.0, "consumers": 4}, 1),
        # lag but nobody consumes yet: start one (and measure)
        ({"lag": 40, "incoming": None, "throughput": None, "consumers": 0}, 1),
        # consumers hold lag and make no progress: stalled, more replicas would not help
        ({"lag": 40, "incoming": 0.0, "throughput": 0.0, "consumers": 2}, None),
        # exactly at capacity: no rounding up past it
        ({"lag": 0, "incoming": 20.0, "throughput": 20.0, "consumers": 2}, 2),
    ],
)
def test_advise_replicas(kw: dict, advised: int | None) -> None:
    assert advise_replicas(partitions=8, drain_target_s=300.0, **kw) == advised


def test_report_from_two_snapshots() -> None:
    before = snap(
        100.0,
        {("raw", 0): 10, ("raw", 1): None, ("chunks", 0): 4},
        {("raw", 0): 50, ("raw", 1): 30, ("chunks", 0): 5},
        consumers={"raw": 1, "chunks": 1},
    )
    after = snap(
        102.0,
        {("raw", 0): 20, ("raw", 1): 6, ("chunks", 0): 4},
        {("raw", 0): 54, ("raw", 1): 30, ("chunks", 0): 5},
        consumers={"raw": 1, "chunks": 1},
        empty_tails=frozenset({("chunks", 0)}),
    )
    report = build_report("g", STAGES, after, before, drain_target_s=60.0)
    chunk, embed = report.stages
    assert [(p.topic, p.partition, p.lag) for p in report.partitions] == [
        ("raw", 0, 34),
        ("raw", 1, 24),
        ("chunks", 0, 0),
    ]
    assert chunk.lag == 58 and chunk.partitions == 2 and chunk.consumers == 1
    assert chunk.throughput == pytest.approx((10 + 6) / 2)  # raw/1 had nothing committed: counts from its start
    assert chunk.incoming == pytest.approx(4 / 2)
    assert chunk.drain_seconds == pytest.approx(58 / 8)
    assert chunk.advised_replicas == 1  # (2 + 58/60) / 8 per replica -> 1
    assert embed.lag == 0 and embed.drain_seconds == 0.0
    assert report.total_lag == 58
    assert report.drain_seconds == pytest.approx(58 / 8)
    assert report.interval_s == 2.0
    data = report.to_json()
    assert data["total_lag"] == 58 and data["stages"][0]["stage"] == "chunk"
    assert data["partitions"][1] == {
        "topic": "raw",
        "partition": 1,
        "committed": 6,
        "log_start": 0,
        "end": 30,
        "lag": 24,
    }


def test_one_snapshot_has_no_rates_and_an_unknown_drain_time() -> None:
    report = build_report("g", STAGES, snap(1.0, {("raw", 0): None}, {("raw", 0): 40}))
    chunk, embed = report.stages
    assert chunk.lag == 40 and chunk.throughput is None and chunk.drain_seconds is None
    assert chunk.advised_replicas == 1
    assert embed.partitions == 0 and embed.lag == 0
    assert report.drain_seconds is None
    assert report.interval_s == 0.0


def test_group_drain_time_is_the_slowest_stage() -> None:
    before = snap(0.0, {("raw", 0): 0, ("chunks", 0): 0}, {("raw", 0): 100, ("chunks", 0): 100})
    after = snap(10.0, {("raw", 0): 50, ("chunks", 0): 10}, {("raw", 0): 100, ("chunks", 0): 100})
    report = build_report("g", STAGES, after, before)
    assert [s.drain_seconds for s in report.stages] == [10.0, 90.0]
    assert report.drain_seconds == 90.0
    assert not math.isinf(report.drain_seconds)


def test_consumers_per_topic_reads_member_assignments() -> None:
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    def member(assignment: list[tuple[str, list[int]]]) -> tuple:
        data = ConsumerProtocolMemberAssignment(0, assignment, b"").encode()
        return ("m", "client", "/127.0.0.1", b"", data)

    class Response:
        groups = [
            (
                0,
                "g",
                "Stable",
                "consumer",
                "faust",
                [member([("raw", [0, 1]), ("chunks", [0])]), member([("raw", [2])])],
            ),
        ]

    assert consumers_per_topic([Response()]) == {"raw": 2, "chunks": 1}
    Response.groups = [(0, "g", "Empty", "consumer", "", [])]
    assert consumers_per_topic([Response()]) == {}
