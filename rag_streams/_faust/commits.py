"""Work-around 14: offsets at or below the committed one are forgotten before the next commit
offset is computed. Not reported upstream (the gap tracking it corrects came with
faust-streaming#312). A read_committed consumer of a transactional topic never sees the
transaction markers, so Faust records the offsets it skipped as a "gap" that counts as acked
(``Consumer._add_gap``). ``_add_gap`` clamps the gap's start to ``committed + 1`` although Faust's
committed offset is already the next offset to read, so after a marker the gap recorded is the
arriving record's own offset; ``_new_offset`` leaves that entry behind once the record is
committed, and at the next commit puts the already committed offset back among the acked ones and
stops there: the partition commits nothing that round. Under exactly_once its transaction, which
holds the stage's outputs, then stays open one more commit interval: measured on the embed -> index
hop with one document updated at a time, every other update waited two intervals (5.2-5.4 s
instead of 2.2-2.8 s at Faust's 2.8 s interval).

(A first version of this module also ended a commit's transactions concurrently; the worker-roles
test then saw a transaction begun twice and read_committed duplicates after a scale-down, and the
speed-up was not measurable on this machine, so it was removed.)
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

from rag_streams._faust.patch import patch_once

__all__ = ["install_committed_offsets_forgotten"]


def _forgets_what_is_committed(original: Any) -> Any:
    def new_offset(self: Consumer, tp: Any) -> int | None:
        committed = self._committed_offset[tp]
        if committed is not None:
            gap = self._gap[tp]
            if gap:
                gap.chop(0, committed)  # offsets below the committed one: committed already
            acked = self._acked[tp]
            if acked and min(acked) < committed:
                self._acked_index[tp].difference_update(o for o in acked if o < committed)
                acked[:] = [o for o in acked if o >= committed]
        result: int | None = original(self, tp)
        return result

    return new_offset


def install_committed_offsets_forgotten() -> None:
    """Drop acked offsets and gaps below the committed offset before each commit (idempotent)."""
    patch_once(Consumer, "_new_offset", _forgets_what_is_committed)
