"""Two lanes into one stage: interactive updates first, the bulk lane in what is left.

A tenant bulk-loading a corpus would otherwise put every other tenant's update behind its backlog:
a partition is consumed in order. Bulk loads (``publish --bulk``) go to topics of their own
(``{prefix}.documents.raw.bulk``, then ``{prefix}.documents.chunks.bulk``), which the chunk and
embed stages consume with a second agent each; in each stage the two agents take turns through
one :class:`LaneGate`:

- work of the interactive lane runs as soon as the batch (event) in progress ends;
- bulk work starts only when no interactive work is waiting, and bulk batches are small
  (``RAG_BULK_EMBED_BATCH``), so an update waits for at most one of them.

One batch at a time also keeps a stage's decisions serial: each plans from the tables the previous
one wrote, whichever lane it came from. Both lanes of a partition commit in one transaction (a bulk
topic is in its interactive topic's transaction group, like the two source topics of one Kafka
Streams task), so no decision rests on a table row a crash could roll back without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["LaneGate"]


class LaneGate:
    """One batch at a time; interactive batches before bulk ones."""

    def __init__(self) -> None:
        self._busy = False
        self._interactive_waiting = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def turn(self, *, bulk: bool) -> AsyncIterator[None]:
        """Hold the stage for one batch of a lane."""
        async with self._changed:
            if not bulk:
                self._interactive_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._busy and (not bulk or not self._interactive_waiting))
            finally:
                if not bulk:
                    self._interactive_waiting -= 1
                    self._changed.notify_all()  # a bulk batch may go now (this one goes, or was cancelled)
            self._busy = True
        try:
            yield
        finally:
            async with self._changed:
                self._busy = False
                self._changed.notify_all()

    @property
    def busy(self) -> bool:
        return self._busy
