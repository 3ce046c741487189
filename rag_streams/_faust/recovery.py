"""Work-arounds for Faust's table recovery under ``exactly_once`` (continuing compat.py's list).

8. Recovery reads each changelog partition up to a highwater, and under transactions Faust takes
   that highwater from ``AIOKafkaConsumer.last_stable_offset(tp)``: a value aiokafka only knows
   from a fetch response for ``tp`` in the current assignment. Right after a rebalance there has
   usually been none, so every highwater is ``-1``: Faust restores nothing (the tables come up
   empty and replayed duplicates pass the version rules), or, when the store kept an offset from
   an earlier generation, crashes with ``ConsistencyError("The persisted offset ... is higher
   than the last offset in that topic (highwater) (71 > -1)")``. Found by
   tests/integration/test_crash.py (the worker died when the killed member's session expired).
   :func:`install_broker_highwaters` asks the broker instead (ListOffsets at the consumer's
   read_committed isolation level returns the last stable offset).

9. Under transactions the last offsets before that highwater are commit or abort markers, and
   records of aborted transactions: a read_committed consumer never receives them, so recovery
   waits for an offset that never comes. Faust's own escape (``detect_aborted_tx``) runs only
   after two 5-second timeouts of an empty changelog queue: every rebalance stalled the worker
   for 10 to 15 s, long enough for the next rebalance to interrupt it. :class:`RecoveryEndWatch`,
   run every half second, ends recovery as soon as the consumer's position has passed the
   highwater of every partition still "remaining" and the changelog queue stayed empty for two
   checks in a row; it lowers those highwaters to the last offset read (it never raises an
   offset, so a record still on its way would be applied, not skipped).

   "Passed the highwater" means fetched, not applied: a batch the consumer fetched and work-around
   13 then dropped (fetched across a rebalance, or skipped by Faust's getmany) moves the position
   past records that only its seek back fetches again. While such a batch is in hand
   (:func:`batch_in_hand`), the watch waits. Found by tests/integration/test_worker_roles.py with
   the bulk lane on: the seek to the committed offsets before that seek back took 1.5 s, the
   watch ended the recovery meanwhile with nothing restored, and the embed worker that took over
   embedded again the chunks its predecessor had committed (read_committed duplicates).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from rag_streams._faust.patch import patch_once

__all__ = [
    "RecoveryEndWatch",
    "batch_in_hand",
    "install_broker_highwaters",
    "install_recovery_end_watch",
    "watch_recovery_end",
]

log = logging.getLogger(__name__)
_SOUGHT = "_rag_active_offsets_sought"  # set on a Recovery once this round's seek is done
_IN_HAND = "_rag_fetched_batch_in_hand"  # set on the consumer from a fetch's return to its hand-out


def batch_in_hand(consumer: Any, in_hand: bool) -> None:
    """Mark that ``consumer`` holds fetched records not yet handed out or sought back to: their
    partitions' positions are past records no table has seen yet (work-around 13 sets it)."""
    setattr(consumer, _IN_HAND, in_hand)


async def _broker_highwaters(self: AIOKafkaConsumerThread, partitions: list[Any]) -> Mapping[Any, int]:
    # the consumer's isolation level (read_committed under transactions) picks the LSO
    result: Mapping[Any, int] = await self._ensure_consumer().end_offsets(partitions)
    return result


def _asks_the_broker(original: Any) -> Any:
    async def highwaters(self: AIOKafkaConsumerThread, partitions: list[Any]) -> Mapping[Any, int]:
        return await _broker_highwaters(self, partitions)

    return highwaters


def install_broker_highwaters() -> None:
    """Recovery highwaters come from the broker, never from a fetch that has not happened (idempotent)."""
    patch_once(AIOKafkaConsumerThread, "_highwaters", _asks_the_broker)


def _marks_round(original: Any, *, sought: bool) -> Any:
    async def marked(self: Recovery, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        if title == "active" and not sought:
            setattr(self, _SOUGHT, False)  # a new round: its offsets are not known yet
        await original(self, consumer, tps, destination, title)
        if title == "active" and sought:
            setattr(self, _SOUGHT, True)

    return marked


def _watching(original: Any) -> Any:
    async def on_start(self: Recovery) -> None:
        await original(self)
        self.add_future(watch_recovery_end(self.app))

    return on_start


def install_recovery_end_watch() -> None:
    """Run :class:`RecoveryEndWatch` for the life of the Recovery service, and let it tell when a
    recovery round has sought its offsets (idempotent). It starts with the Recovery service, not as
    an app task: Faust starts app tasks only once the first recovery is done, and a worker started
    after a SIGKILL then waited out Faust's own 10-15 s escape in that very first recovery."""
    patch_once(Recovery, "_build_highwaters", partial(_marks_round, sought=False), tag="recovery round start")
    patch_once(Recovery, "_seek_offsets", partial(_marks_round, sought=True), tag="recovery round sought")
    patch_once(Recovery, "on_start", _watching, tag="recovery end watch from the start")


async def watch_recovery_end(app: Any, interval: float = 0.5) -> None:
    """Run :class:`RecoveryEndWatch` for the life of the worker."""
    watch = RecoveryEndWatch()
    while True:
        await asyncio.sleep(interval)
        try:
            if await watch.check(app):
                log.info("table recovery ended at the last committed record (work-around 9)")
        except (ConsumerNotStarted, KafkaError) as exc:  # mid-rebalance: the next check starts over
            log.debug("recovery end check skipped: %r", exc)
            watch.reset()


class RecoveryEndWatch:
    """Ends a table recovery stuck below a highwater made of transaction markers (work-around 9)."""

    def __init__(self) -> None:
        self._last: tuple[Any, ...] | None = None

    def reset(self) -> None:
        self._last = None

    async def check(self, app: Any) -> bool:
        """One check; True when it ended the recovery."""
        recovery: Any = app.tables.recovery
        if not recovery.in_recovery or not getattr(recovery, _SOUGHT, False):
            self._last = None
            return False
        remaining = sorted(tp for tp, n in recovery.active_remaining().items() if n > 0)
        if not remaining or not app.tables.changelog_queue.empty() or getattr(app.consumer, _IN_HAND, False):
            self._last = None
            return False
        offsets = recovery.active_offsets
        highwaters = recovery.active_highwaters
        for tp in remaining:
            position = await app.consumer.position(tp)
            if position is None or position <= highwaters[tp]:
                self._last = None  # records up to the highwater may still come
                return False
        state = (app.consumer_generation_id, *((tp, offsets[tp], highwaters[tp]) for tp in remaining))
        if state != self._last:
            self._last = state  # the same quiet state twice in a row: nothing is on its way
            return False
        self._last = None
        for tp in remaining:
            highwaters[tp] = offsets[tp]
        if recovery.in_recovery and not recovery.need_recovery():
            recovery.flush_buffers()
            recovery._set_recovery_ended()
            recovery.signal_recovery_end.set()
            return True
        return False
