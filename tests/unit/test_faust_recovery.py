"""Work-arounds 8 and 9: table recovery under transactions knows where each changelog ends, and
stops at the last committed record instead of waiting for transaction markers it never receives.

Faust's own ``Recovery.active_remaining``/``need_recovery`` and a real (unstarted) aiokafka
consumer are used where they decide the outcome; the rest are stand-ins that record what happens.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from faust.tables.recovery import Recovery

from rag_streams._faust.recovery import _SOUGHT, RecoveryEndWatch, _broker_highwaters, batch_in_hand

TP0 = TopicPartition("app-accepted-versions-changelog", 0)
TP1 = TopicPartition("app-accepted-versions-changelog", 1)


async def test_highwaters_come_from_the_broker() -> None:
    asked: list[Any] = []

    async def end_offsets(partitions: list[Any]) -> dict[Any, int]:
        asked.append(partitions)
        return {TP0: 73, TP1: 0}

    thread = SimpleNamespace(_ensure_consumer=lambda: SimpleNamespace(end_offsets=end_offsets))
    assert await _broker_highwaters(thread, [TP0, TP1]) == {TP0: 73, TP1: 0}  # type: ignore[arg-type]
    assert asked == [[TP0, TP1]]


class StandInRecovery:
    active_remaining = Recovery.active_remaining
    need_recovery = Recovery.need_recovery

    def __init__(self, offsets: dict[Any, int], highwaters: dict[Any, int]) -> None:
        self.in_recovery = True
        self.active_offsets: Counter[Any] = Counter(offsets)
        self.active_highwaters: Counter[Any] = Counter(highwaters)
        self.signal_recovery_end = asyncio.Event()
        self.flushed = 0
        setattr(self, _SOUGHT, True)

    def flush_buffers(self) -> None:
        self.flushed += 1

    def _set_recovery_ended(self) -> None:
        self.in_recovery = False


def stand_in_app(recovery: StandInRecovery, positions: dict[Any, int]) -> Any:
    async def position(tp: Any) -> int:
        return positions[tp]

    return SimpleNamespace(
        tables=SimpleNamespace(recovery=recovery, changelog_queue=asyncio.Queue()),
        consumer=SimpleNamespace(position=position),
        consumer_generation_id=3,
    )


async def test_recovery_ends_when_only_markers_remain_for_two_checks() -> None:
    # TP0: last record read at 53, aborted records and markers up to the LSO 59 (highwater 58)
    recovery = StandInRecovery({TP0: 53, TP1: 10}, {TP0: 58, TP1: 10})
    app = stand_in_app(recovery, {TP0: 59, TP1: 11})
    watch = RecoveryEndWatch()
    assert not await watch.check(app)  # the first quiet check only remembers the state
    assert recovery.in_recovery
    assert await watch.check(app)
    assert not recovery.in_recovery and recovery.signal_recovery_end.is_set() and recovery.flushed == 1
    assert recovery.active_highwaters[TP0] == 53 and recovery.active_offsets[TP0] == 53  # never raised


async def test_recovery_goes_on_while_records_may_still_come() -> None:
    recovery = StandInRecovery({TP0: 53}, {TP0: 58})
    positions = {TP0: 58}  # the consumer has not passed the highwater: 58 may be a record
    app = stand_in_app(recovery, positions)
    watch = RecoveryEndWatch()
    for _ in range(3):
        assert not await watch.check(app)
    app.tables.changelog_queue.put_nowait("event")  # passed it, but an event waits to be applied
    positions[TP0] = 59
    for _ in range(3):
        assert not await watch.check(app)
    assert recovery.in_recovery and recovery.active_highwaters[TP0] == 58


async def test_recovery_goes_on_when_progress_was_made_between_checks() -> None:
    recovery = StandInRecovery({TP0: 50}, {TP0: 58})
    app = stand_in_app(recovery, {TP0: 59})
    watch = RecoveryEndWatch()
    assert not await watch.check(app)
    recovery.active_offsets[TP0] = 53  # a record arrived in between: not quiet yet
    assert not await watch.check(app)
    assert await watch.check(app)
    assert recovery.active_highwaters[TP0] == 53


async def test_recovery_goes_on_while_a_fetched_batch_is_in_hand() -> None:
    # the consumer fetched the changelog's records (its position passed the highwater), but the
    # batch was dropped and the seek back to its records had not happened yet (work-around 13)
    recovery = StandInRecovery({TP0: -1}, {TP0: 55})
    app = stand_in_app(recovery, {TP0: 56})
    batch_in_hand(app.consumer, True)
    watch = RecoveryEndWatch()
    for _ in range(3):
        assert not await watch.check(app)
    assert recovery.in_recovery and recovery.active_highwaters[TP0] == 55
    batch_in_hand(app.consumer, False)  # handed out: now a quiet state twice in a row ends it
    assert not await watch.check(app)
    assert await watch.check(app)


async def test_no_action_before_this_round_sought_its_offsets() -> None:
    # between building highwaters and seeking, the offsets are still the previous round's
    recovery = StandInRecovery({TP0: 20}, {TP0: 58})
    setattr(recovery, _SOUGHT, False)
    app = stand_in_app(recovery, {TP0: 59})
    watch = RecoveryEndWatch()
    for _ in range(3):
        assert not await watch.check(app)
    assert recovery.in_recovery and recovery.active_highwaters[TP0] == 58


async def test_the_watch_starts_with_the_recovery_service_not_after_the_first_recovery() -> None:
    # An @app.task starts only once the worker is ready, i.e. after the first recovery: a worker
    # restarted after a SIGKILL then sat 10-15 s in Faust's own escape. The watch is started by
    # the Recovery service's on_start instead.
    from rag_streams._faust.patch import installed
    from rag_streams._faust.recovery import install_recovery_end_watch

    install_recovery_end_watch()
    assert "recovery end watch from the start" in installed(Recovery.on_start)
    started: list[Any] = []
    stand_in = SimpleNamespace(app=SimpleNamespace(), add_future=started.append)
    await Recovery.on_start(stand_in)  # type: ignore[arg-type]
    (coro,) = started
    assert coro.cr_code.co_name == "watch_recovery_end"
    coro.close()
