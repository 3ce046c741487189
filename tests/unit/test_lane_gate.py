"""The embed stage's two lanes: one batch at a time, interactive batches before bulk ones."""

from __future__ import annotations

import asyncio

import pytest

from rag_streams.pipeline.lanes import LaneGate


async def _batch(gate: LaneGate, name: str, bulk: bool, log: list[str], hold: asyncio.Event | None = None) -> None:
    async with gate.turn(bulk=bulk):
        log.append(f"start {name}")
        if hold is not None:
            await hold.wait()
        else:
            await asyncio.sleep(0)
        log.append(f"end {name}")


async def test_one_batch_at_a_time_and_a_waiting_update_goes_before_waiting_bulk_batches() -> None:
    gate, log, hold = LaneGate(), [], asyncio.Event()
    running = asyncio.create_task(_batch(gate, "bulk-1", True, log, hold))
    await asyncio.sleep(0.01)
    bulk = asyncio.create_task(_batch(gate, "bulk-2", True, log))  # queued first ...
    await asyncio.sleep(0.01)
    update = asyncio.create_task(_batch(gate, "update", False, log))  # ... but the update goes first
    await asyncio.sleep(0.01)
    assert log == ["start bulk-1"] and gate.busy  # nothing overlaps the batch in progress
    hold.set()
    await asyncio.gather(running, bulk, update)
    assert log == ["start bulk-1", "end bulk-1", "start update", "end update", "start bulk-2", "end bulk-2"]
    assert not gate.busy


async def test_bulk_batches_go_when_no_update_waits() -> None:
    gate, log = LaneGate(), []
    await asyncio.wait_for(asyncio.gather(*(_batch(gate, f"b{i}", True, log) for i in range(3))), 5)
    assert [x for x in log if x.startswith("start")] == ["start b0", "start b1", "start b2"]


async def test_a_cancelled_update_does_not_hold_back_the_bulk_lane() -> None:
    gate, log, hold = LaneGate(), [], asyncio.Event()
    running = asyncio.create_task(_batch(gate, "update-1", False, log, hold))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(_batch(gate, "update-2", False, log))
    bulk = asyncio.create_task(_batch(gate, "bulk", True, log))
    await asyncio.sleep(0.01)
    waiting.cancel()  # e.g. a rebalance stops the agent
    with pytest.raises(asyncio.CancelledError):
        await waiting
    hold.set()
    await asyncio.wait_for(asyncio.gather(running, bulk), 5)
    assert log == ["start update-1", "end update-1", "start bulk", "end bulk"]


async def test_a_failing_batch_releases_the_gate() -> None:
    gate = LaneGate()
    with pytest.raises(RuntimeError):
        async with gate.turn(bulk=False):
            raise RuntimeError("model failed")
    assert not gate.busy
    await asyncio.wait_for(_batch(gate, "next", True, []), 5)
