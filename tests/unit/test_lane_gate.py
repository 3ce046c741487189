"""The lanes of a stage: one batch at a time, interactive batches before bulk ones, worker-wide."""

from __future__ import annotations

import asyncio
import time

import pytest

from rag_streams.pipeline.lanes import LaneGate, Lanes, bulk_pieces, chunk_lane


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


async def test_a_bulk_batch_waits_while_another_stage_of_the_worker_has_an_update() -> None:
    """The worker-wide rule: the chunk stage's bulk lane pauses while the embed stage has an
    update waiting or running (they share the cores)."""
    lanes = Lanes()
    chunk, embed = LaneGate(lanes), LaneGate(lanes)
    log: list[str] = []
    model, update_hold = asyncio.Event(), asyncio.Event()
    bulk_embed = asyncio.create_task(_batch(embed, "bulk-embed", True, log, model))
    await asyncio.sleep(0.01)
    update = asyncio.create_task(_batch(embed, "update", False, log, update_hold))  # waits for bulk-embed
    await asyncio.sleep(0.01)
    bulk_chunk = asyncio.create_task(_batch(chunk, "bulk-chunk", True, log))
    await asyncio.sleep(0.01)
    assert log == ["start bulk-embed"]  # the other stage's bulk batch waits for the waiting update
    model.set()
    await asyncio.sleep(0.01)
    assert log == ["start bulk-embed", "end bulk-embed", "start update"]  # ... and for it to run
    update_hold.set()
    await asyncio.wait_for(asyncio.gather(bulk_embed, update, bulk_chunk), 5)
    assert log[3:] == ["end update", "start bulk-chunk", "end bulk-chunk"]
    assert lanes.interactive == 0


async def test_updates_of_different_stages_run_side_by_side() -> None:
    lanes = Lanes()
    chunk, embed = LaneGate(lanes), LaneGate(lanes)
    log: list[str] = []
    hold = asyncio.Event()
    first = asyncio.create_task(_batch(embed, "embed-update", False, log, hold))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(_batch(chunk, "chunk-update", False, log))
    await asyncio.wait_for(second, 5)  # not held back by the other stage's update
    hold.set()
    await asyncio.wait_for(first, 5)
    assert log[:3] == ["start embed-update", "start chunk-update", "end chunk-update"]


async def test_a_bulk_batch_already_running_is_not_interrupted_by_another_stages_update() -> None:
    lanes = Lanes()
    chunk, embed = LaneGate(lanes), LaneGate(lanes)
    log: list[str] = []
    hold = asyncio.Event()
    bulk = asyncio.create_task(_batch(chunk, "bulk-chunk", True, log, hold))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(_batch(embed, "update", False, log), 5)  # another stage: goes at once
    hold.set()
    await asyncio.wait_for(bulk, 5)
    assert log == ["start bulk-chunk", "start update", "end update", "end bulk-chunk"]


async def test_the_bulk_lane_is_alive_while_it_waits_and_for_a_while_after_a_turn() -> None:
    """What Faust's livelock check asks (work-around 22): silence of a bulk partition is by design
    while the lane waits for its turn, or moved within the stream timeout."""
    lanes = Lanes()
    gate = LaneGate(lanes)
    assert not lanes.bulk_alive(time.monotonic(), 300.0)  # never moved: Faust's own check applies
    hold = asyncio.Event()
    update = asyncio.create_task(_batch(gate, "update", False, [], hold))
    await asyncio.sleep(0.01)
    bulk = asyncio.create_task(_batch(gate, "bulk", True, []))
    await asyncio.sleep(0.01)
    assert lanes.bulk_waiting == 1 and lanes.bulk_alive(time.monotonic() + 1000, 300.0)  # waiting: always alive
    hold.set()
    await asyncio.wait_for(asyncio.gather(update, bulk), 5)
    assert lanes.bulk_waiting == 0
    assert lanes.bulk_alive(time.monotonic(), 300.0)  # its turn just ended
    assert not lanes.bulk_alive(time.monotonic() + 301, 300.0)  # nothing waiting, nothing moved for 301 s


async def test_a_bulk_turn_stuck_for_longer_than_the_timeout_is_not_alive() -> None:
    lanes = Lanes()
    gate = LaneGate(lanes)
    hold = asyncio.Event()
    stuck = asyncio.create_task(_batch(gate, "bulk", True, [], hold))
    await asyncio.sleep(0.01)
    assert lanes.bulk_alive(time.monotonic(), 300.0)  # started just now
    assert not lanes.bulk_alive(time.monotonic() + 301, 300.0)  # still inside its turn 301 s later
    hold.set()
    await asyncio.wait_for(stuck, 5)


def test_a_document_of_min_chunks_or_more_takes_the_bulk_lane() -> None:
    assert [chunk_lane("interactive", n, min_chunks=24) for n in (0, 1, 23, 24, 70)] == [
        "interactive",
        "interactive",
        "interactive",
        "bulk",
        "bulk",
    ]
    assert chunk_lane("bulk", 1, min_chunks=24) == "bulk"  # published --bulk: always bulk
    assert chunk_lane("interactive", 500, min_chunks=0) == "interactive"  # 0: off


def test_a_bulk_take_is_cut_into_small_pieces_of_a_bulk_load_and_batch_sized_ones_of_a_large_document() -> None:
    # "b": a bulk load's chunk (publish --bulk), "L": a large document's (published as an update)
    take = ["b1", "b2", "b3", "b4", "b5", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9", "b6", "L10"]
    pieces = bulk_pieces(take, lambda item: item.startswith("L"), size=4, large_size=8)
    assert pieces == [
        ["b1", "b2", "b3", "b4"],
        ["b5"],
        ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"],
        ["L9"],
        ["b6"],
        ["L10"],
    ]
    assert [item for piece in pieces for item in piece] == take  # every item once, in order
    assert bulk_pieces([], lambda item: True, size=4, large_size=8) == []
