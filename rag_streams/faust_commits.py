"""Work-around 14: the transactions of one commit end concurrently, not one after another.

Not reported upstream. Under ``exactly_once`` Faust keeps one transactional producer per
(consuming stage, partition) and its commit ends their transactions in turn
(``faust.transport.drivers.aiokafka.Producer.commit_transactions``: for each transactional id,
``send_offsets_to_transaction``, then ``commit_transaction``, then ``begin_transaction``, each a
broker round trip). With three stages on four partitions a commit ran 12 of these in a row; on
this project's development machine that took 100-170 ms, longer than the 0.1 s commit interval
fresh results need, and every emit waits for a commit in progress (work-around 12's gate), so the
embed stage's model sat idle behind it. Each transactional id has its own producer, connection
and lock, and its transaction is an atomic unit of its own (its outputs and its input offsets),
so the ids are independent: ending them concurrently changes only how long the commit takes.
Every id is attempted, as in Faust's loop; the first error is raised after all have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import Producer

from rag_streams.faust_patch import patch_once

__all__ = ["install_concurrent_transaction_commits"]


def _concurrently(original: Any) -> Any:
    async def commit_transactions(
        self: Producer,
        tid_to_offset_map: Mapping[str, Mapping[Any, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        if len(tid_to_offset_map) < 2:
            await original(self, tid_to_offset_map, group_id, start_new_transaction)
            return
        results = await asyncio.gather(
            *(
                original(self, {tid: offsets}, group_id, start_new_transaction)
                for tid, offsets in tid_to_offset_map.items()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    return commit_transactions


def install_concurrent_transaction_commits() -> None:
    """End a commit's transactions concurrently (idempotent)."""
    patch_once(Producer, "commit_transactions", _concurrently)
