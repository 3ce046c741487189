"""Version rules and the index stage's batch plan: stale, duplicate and deleted input never reaches Qdrant."""

from __future__ import annotations

import dataclasses

import pytest

from rag_streams.rules.ids import content_hash, point_id
from rag_streams.rules.indexing import payload, plan_batch, slot_key
from rag_streams.rules.records import DELETE, UPSERT, EmbeddingUpsert
from rag_streams.rules.versions import DocState, Verdict, judge


@pytest.mark.parametrize(
    ("state", "version", "is_delete", "verdict"),
    [
        (None, 1, False, Verdict.APPLY),
        (None, 1, True, Verdict.APPLY),
        (DocState(5), 6, False, Verdict.APPLY),
        (DocState(5), 6, True, Verdict.APPLY),
        (DocState(5), 4, False, Verdict.STALE),
        (DocState(5), 4, True, Verdict.STALE),
        (DocState(5), 5, False, Verdict.CURRENT),
        (DocState(5), 5, True, Verdict.APPLY),  # same version: the delete wins, in either order
        (DocState(5, deleted=True), 6, False, Verdict.APPLY),
        (DocState(5, deleted=True), 6, True, Verdict.APPLY),
        (DocState(5, deleted=True), 5, False, Verdict.STALE),
        (DocState(5, deleted=True), 5, True, Verdict.DUPLICATE),
        (DocState(5, deleted=True), 4, False, Verdict.STALE),
        (DocState(5, deleted=True), 4, True, Verdict.STALE),
    ],
)
def test_judge(state: DocState | None, version: int, is_delete: bool, verdict: Verdict) -> None:
    assert judge(state, version, is_delete=is_delete) is verdict


def test_doc_state_json_round_trip() -> None:
    for state in (DocState(7), DocState(8, deleted=True)):
        assert DocState.from_json(state.to_json()) == state
    assert DocState.from_json(None) is None


def item(
    doc: str,
    version: int,
    index: int = 0,
    count: int = 1,
    *,
    tenant: str = "acme",
    op: str = UPSERT,
    text: str | None = None,
) -> EmbeddingUpsert:
    if op == DELETE:
        return EmbeddingUpsert(
            tenant_id=tenant,
            doc_id=doc,
            version=version,
            chunk_id="",
            chunk_index=0,
            chunk_count=0,
            text="",
            content_hash="",
            vector=b"",
            model="",
            dim=0,
            op=DELETE,
        )
    body = text if text is not None else f"{doc} v{version} #{index}"
    return EmbeddingUpsert(
        tenant_id=tenant,
        doc_id=doc,
        version=version,
        chunk_id=point_id(tenant, doc, index),
        chunk_index=index,
        chunk_count=count,
        text=body,
        content_hash=content_hash(body),
        vector=b"\x00" * 8,
        model="m",
        dim=2,
    )


def doc_items(doc: str, version: int, count: int, **kw: object) -> list[EmbeddingUpsert]:
    return [item(doc, version, i, count, **kw) for i in range(count)]  # type: ignore[arg-type]


def test_new_document_is_upserted_then_cleaned_up_once() -> None:
    batch = doc_items("a", 1, 3) + doc_items("b", 1, 2, tenant="beta") + doc_items("c", 2, 1)
    plan = plan_batch(batch, {}, {})
    assert plan.upserts == {("acme", 1, False): [0, 1, 2], ("beta", 1, False): [3, 4], ("acme", 2, False): [5]}
    assert plan.cleanups == [("acme", "a", 1), ("beta", "b", 1), ("acme", "c", 2)]
    assert plan.deletes == []
    assert plan.verdicts == [
        Verdict.APPLY,
        Verdict.CURRENT,
        Verdict.CURRENT,
        Verdict.APPLY,
        Verdict.CURRENT,
        Verdict.APPLY,
    ]
    assert plan.doc_states == {"acme/a": DocState(1), "beta/b": DocState(1), "acme/c": DocState(2)}


def test_cleanup_waits_for_the_last_chunk() -> None:
    plan = plan_batch(doc_items("a", 1, 3)[:2], {}, {})
    assert plan.upserts == {("acme", 1, False): [0, 1]}
    assert plan.cleanups == []


def test_slots_hold_version_and_content_hash() -> None:
    batch = doc_items("a", 4, 2)
    plan = plan_batch(batch, {}, {})
    assert plan.slots == {slot_key(x): [4, x.content_hash] for x in batch}
    assert set(plan.slots) == {"acme/a/0", "acme/a/1"}


def test_stale_chunk_is_not_upserted() -> None:
    plan = plan_batch([item("a", 3)], {"acme/a": DocState(5)}, {"acme/a/0": [5, "h"]})
    assert plan.verdicts == [Verdict.STALE]
    assert plan.upserts == {}
    assert plan.cleanups == []
    assert plan.doc_states == {}
    assert plan.slots == {}


def test_duplicate_chunk_is_not_upserted_again() -> None:
    x = item("a", 5, 0, 2)
    plan = plan_batch([x], {"acme/a": DocState(5)}, {"acme/a/0": [5, x.content_hash]})
    assert plan.verdicts == [Verdict.DUPLICATE]
    assert plan.upserts == {}
    assert plan.slots == {}


def test_replayed_document_is_all_duplicates() -> None:
    batch = doc_items("a", 2, 3)
    first = plan_batch(batch, {}, {})
    replay = plan_batch(batch, first.doc_states, first.slots)
    assert replay.verdicts == [Verdict.DUPLICATE] * 3
    assert replay.upserts == {}
    assert replay.cleanups == []


def test_duplicate_within_one_batch_is_planned_once() -> None:
    batch = doc_items("a", 2, 2)
    plan = plan_batch(batch + batch, {}, {})
    assert plan.upserts == {("acme", 2, False): [0, 1]}
    assert plan.verdicts[2:] == [Verdict.DUPLICATE, Verdict.DUPLICATE]
    assert plan.cleanups == [("acme", "a", 2)]


def test_delete_is_planned_and_marks_the_document_deleted() -> None:
    plan = plan_batch([item("a", 7, op=DELETE)], {"acme/a": DocState(5)}, {"acme/a/0": [5, "h"]})
    assert plan.deletes == [("acme", "a", 7)]
    assert plan.doc_states == {"acme/a": DocState(7, deleted=True)}
    assert plan.upserts == {}
    assert plan.verdicts == [Verdict.APPLY]


def test_repeated_delete_is_a_duplicate() -> None:
    plan = plan_batch([item("a", 7, op=DELETE)], {"acme/a": DocState(7, deleted=True)}, {})
    assert plan.verdicts == [Verdict.DUPLICATE]
    assert plan.deletes == []


def test_older_upsert_after_a_delete_is_stale() -> None:
    plan = plan_batch([item("a", 7, op=DELETE), item("a", 6)], {}, {})
    assert plan.verdicts == [Verdict.APPLY, Verdict.STALE]
    assert plan.upserts == {}
    assert plan.deletes == [("acme", "a", 7)]
    assert plan.doc_states == {"acme/a": DocState(7, deleted=True)}


def test_same_version_upsert_after_its_delete_is_stale() -> None:
    plan = plan_batch([item("a", 7)], {"acme/a": DocState(7, deleted=True)}, {})
    assert plan.verdicts == [Verdict.STALE]
    assert plan.upserts == {}


def test_recreate_with_a_higher_version_after_delete() -> None:
    plan = plan_batch([item("a", 8, 0, 1)], {"acme/a": DocState(7, deleted=True)}, {"acme/a/0": [5, "h"]})
    assert plan.verdicts == [Verdict.APPLY]
    assert plan.upserts == {("acme", 8, False): [0]}
    assert plan.cleanups == [("acme", "a", 8)]
    assert plan.doc_states == {"acme/a": DocState(8)}


def test_two_versions_in_one_batch_plan_both_with_cleanups() -> None:
    batch = doc_items("a", 1, 2) + doc_items("a", 2, 3)
    plan = plan_batch(batch, {}, {})
    assert plan.upserts == {("acme", 1, False): [0, 1], ("acme", 2, False): [2, 3, 4]}
    assert plan.cleanups == [("acme", "a", 1), ("acme", "a", 2)]
    assert plan.doc_states == {"acme/a": DocState(2)}
    assert plan.slots["acme/a/0"] == [2, batch[2].content_hash]
    assert plan.slots["acme/a/2"] == [2, batch[4].content_hash]


def test_out_of_order_versions_in_one_batch_drop_the_older() -> None:
    batch = doc_items("a", 2, 1) + doc_items("a", 1, 1)
    plan = plan_batch(batch, {}, {})
    assert plan.verdicts == [Verdict.APPLY, Verdict.STALE]
    assert plan.upserts == {("acme", 2, False): [0]}
    assert plan.cleanups == [("acme", "a", 2)]


def test_plan_does_not_mutate_the_given_state() -> None:
    states = {"acme/a": DocState(1)}
    slots: dict[str, list[object] | None] = {"acme/a/0": [1, "h"]}
    plan_batch([*doc_items("a", 2, 1), item("a", 3, op=DELETE)], states, slots)
    assert states == {"acme/a": DocState(1)}
    assert slots == {"acme/a/0": [1, "h"]}


def test_payload_carries_the_contract_fields() -> None:
    x = item("a", 3, 1, 2)
    p = payload(x)
    for name in ("tenant_id", "doc_id", "chunk_index", "version", "text", "content_hash", "model", "metadata"):
        assert name in p
    assert (p["tenant_id"], p["doc_id"], p["chunk_index"], p["version"]) == ("acme", "a", 1, 3)


# --- repair replays (verify --repair) -----------------------------------------------------


@pytest.mark.parametrize(
    ("state", "version", "is_delete", "verdict"),
    [
        (DocState(5), 5, False, Verdict.REPAIR),  # re-apply the live version
        (DocState(5), 4, False, Verdict.STALE),  # never an older version of a live document
        (DocState(5), 4, True, Verdict.STALE),  # never delete a live document
        (DocState(5), 5, True, Verdict.APPLY),
        (DocState(5, deleted=True), 5, True, Verdict.REPAIR),  # delete again what is deleted
        (DocState(5, deleted=True), 3, True, Verdict.REPAIR),
        (DocState(5, deleted=True), 5, False, Verdict.STALE),
        (DocState(5), 6, False, Verdict.APPLY),
        (None, 2, True, Verdict.APPLY),
    ],
)
def test_judge_repair(state: DocState | None, version: int, is_delete: bool, verdict: Verdict) -> None:
    assert judge(state, version, is_delete=is_delete, repair=True) is verdict


def test_repair_replay_rewrites_the_applied_version_without_moving_state() -> None:
    batch = doc_items("a", 1, 2)
    state = {"acme/a": DocState(1)}
    slots = {slot_key(i): [1, i.content_hash] for i in batch}
    assert plan_batch(batch, state, slots).upserts == {}  # a plain replay is a duplicate
    plan = plan_batch(batch, state, slots, [True, True])
    assert plan.upserts == {("acme", 1, True): [0, 1]}
    assert plan.cleanups == [("acme", "a", 1)]
    assert plan.doc_states == {}


def test_repair_delete_of_a_deleted_document_is_planned_but_keeps_the_higher_delete() -> None:
    plan = plan_batch([item("a", 3, op=DELETE)], {"acme/a": DocState(9, deleted=True)}, {}, [True])
    assert plan.deletes == [("acme", "a", 3)]
    assert plan.doc_states == {}


def test_unchanged_chunk_without_vector_is_a_reuse_not_an_upsert() -> None:
    body = "same words"
    reused = dataclasses.replace(item("a", 2, 0, 1, text=body), vector=b"", dim=0)
    plan = plan_batch([reused], {"acme/a": DocState(1)}, {slot_key(reused): [1, content_hash(body)]})
    assert plan.upserts == {}
    assert plan.reuses == {("acme", 2): [0]}
    assert plan.cleanups == [("acme", "a", 2)]
    assert plan.slots == {slot_key(reused): [2, content_hash(body)]}
