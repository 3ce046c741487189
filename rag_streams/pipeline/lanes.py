"""Two lanes into one stage: interactive updates first, the bulk lane in what is left.

A tenant bulk-loading a corpus would otherwise put every other tenant's update behind its backlog:
a partition is consumed in order. Bulk loads (``publish --bulk``) go to topics of their own
(``{prefix}.documents.raw.bulk``, then ``{prefix}.documents.chunks.bulk``), which the chunk and
embed stages consume with a second agent each. So do the chunks of any large document
(:func:`chunk_lane`, ``RAG_BULK_MIN_CHUNKS``): one 70-chunk document is 2.5 s of model time here, and
an update queued behind it in the interactive lane waited all of it. In each stage the two agents
take turns through one :class:`LaneGate`:

- work of the interactive lane runs as soon as the batch (event) in progress ends;
- bulk work starts only when no interactive work is waiting or running in *any* stage of the
  worker (:class:`Lanes`, one per worker), and a bulk load's batches are small
  (``RAG_BULK_EMBED_BATCH``), so an update waits for at most one of them per stage (a large
  document's are the interactive lane's size: :func:`bulk_pieces`).

The worker-wide rule matters because the stages share the cores: a bulk load's documents are
chunked in a burst (2,012 chunks in about 6 s here), and while that burst ran beside the embed
stage, an update's chunk waited 0.5-1.2 s for the model instead of 0.1-0.2 s (bench diagnostic,
2026-12-01). With the rule the chunk stage's bulk lane pauses while an update is being embedded.

One batch at a time also keeps a stage's decisions serial: each plans from the tables the previous
one wrote, whichever lane it came from. Both lanes of a partition commit in one transaction (a bulk
topic is in its interactive topic's transaction group, like the two source topics of one Kafka
Streams task), so no decision rests on a table row a crash could roll back without it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

__all__ = ["LaneGate", "Lanes", "bulk_pieces", "chunk_lane"]

T = TypeVar("T")


def chunk_lane(source: str, chunks: int, *, min_chunks: int) -> str:
    """The lane a document version's ``chunks`` records go on in: the bulk lane's stay bulk; an
    interactive one of ``min_chunks`` chunks or more (RAG_BULK_MIN_CHUNKS, 0: off) moves to the bulk
    lane, so that no update waits behind its model time. Safe for order: the two lanes share keys,
    partitions and version tables, and an older version arriving later is dropped."""
    if source == "bulk" or (min_chunks and chunks >= min_chunks):
        return "bulk"
    return source


def bulk_pieces(items: Sequence[T], large: Callable[[T], bool], *, size: int, large_size: int) -> list[list[T]]:
    """A bulk take cut into the pieces the lane's turns run one at a time, in order: a bulk load's
    items ``size`` at a time (RAG_BULK_EMBED_BATCH: an update waits for at most one such piece), a
    large document's (``large``: published as an update, see :func:`chunk_lane`) ``large_size`` at a
    time (RAG_EMBED_BATCH, the interactive lane's batch: smaller batches cost the model more per chunk)."""
    pieces: list[list[T]] = []
    piece_is_large = False
    for item in items:
        is_large = large(item)
        if pieces and is_large == piece_is_large and len(pieces[-1]) < (large_size if is_large else size):
            pieces[-1].append(item)
        else:
            pieces.append([item])
            piece_is_large = is_large
    return pieces


class Lanes:
    """The worker's lanes: how many interactive batches wait or run in any of its stages, and
    whether the bulk lane is alive (for Faust's livelock check: work-around 22)."""

    def __init__(self) -> None:
        self.changed = asyncio.Condition()
        self.interactive = 0
        self.bulk_waiting = 0  #: bulk batches waiting for their turn
        self.bulk_moved_at: float | None = None  #: monotonic time a bulk turn last started or ended

    def bulk_alive(self, now: float, within: float) -> bool:
        """Whether the bulk lane waits for its turn, or a bulk turn started or ended ``within``
        seconds before ``now`` (monotonic): its partitions' silence is by design, not a stall."""
        moved = self.bulk_moved_at
        return self.bulk_waiting > 0 or (moved is not None and now - moved < within)


class LaneGate:
    """One stage's batches one at a time, interactive ones first; a bulk batch also waits for the
    worker's other stages to have no interactive work (``lanes``, shared by the stages' gates)."""

    def __init__(self, lanes: Lanes | None = None) -> None:
        self._lanes = lanes if lanes is not None else Lanes()
        self._busy = False

    @asynccontextmanager
    async def turn(self, *, bulk: bool) -> AsyncIterator[None]:
        """Hold the stage for one batch of a lane."""
        lanes = self._lanes
        async with lanes.changed:
            if bulk:
                lanes.bulk_waiting += 1
            else:
                lanes.interactive += 1  # from now on: bulk batches in every stage wait
            try:
                await lanes.changed.wait_for(lambda: not self._busy and (not bulk or not lanes.interactive))
            except BaseException:  # cancelled while waiting (a rebalance stops the agent)
                if not bulk:
                    lanes.interactive -= 1
                    lanes.changed.notify_all()
                raise
            finally:
                if bulk:
                    lanes.bulk_waiting -= 1
                    lanes.bulk_moved_at = time.monotonic()
            self._busy = True
        try:
            yield
        finally:
            async with lanes.changed:
                self._busy = False
                if bulk:
                    lanes.bulk_moved_at = time.monotonic()
                else:
                    lanes.interactive -= 1
                lanes.changed.notify_all()

    @property
    def busy(self) -> bool:
        return self._busy
