"""Retag: an unchanged document re-published is one record per stage (rag_streams/rules/retag.py).

The chunk stage's decision, the embed stage's plan and the index stage's plan, each pure."""

from __future__ import annotations

import dataclasses

import pytest

from rag_streams.rules.embed_plan import Action, plan_embeddings, slot_of
from rag_streams.rules.ids import content_hash, point_id
from rag_streams.rules.indexing import payload, plan_batch, retag_payload
from rag_streams.rules.records import DELETE, RETAG_HEADER, UPSERT, Chunk, EmbeddingUpsert, RawDocument, retag_of
from rag_streams.rules.retag import document_hash, retag_chunk, retag_headers, retags
from rag_streams.rules.versions import DocState, Verdict, judge

DOC = RawDocument("acme", "a.md", 5, text="Some text.", metadata={"b": "2", "a": "1"})


def digest(doc: RawDocument = DOC, **kw: object) -> str:
    args: dict[str, object] = {"size": 200, "overlap": 32, "tokenizer": "m", **kw}
    return document_hash(doc, **args)  # type: ignore[arg-type]


# --- the chunk stage's row and decision ---------------------------------------------------------


def test_accepted_rows_keep_hash_and_count_and_old_rows_still_read() -> None:
    state = DocState(7, False, "abc", 3)
    assert state.to_json() == [7, False, "abc", 3]
    assert DocState.from_json(state.to_json()) == state
    assert DocState.from_json([7, True]) == DocState(7, True)  # a row written before retag: no hash
    assert DocState(7).to_json() == [7, False]  # the index stage's rows are unchanged


def test_document_hash_covers_text_metadata_and_chunking() -> None:
    same = dataclasses.replace(DOC, version=9, metadata={"a": "1", "b": "2"}, produced_at=123)
    assert digest(same) == digest()  # version, produce time and metadata order do not count
    assert digest(dataclasses.replace(DOC, text="Some text!")) != digest()
    assert digest(dataclasses.replace(DOC, metadata={"a": "1"})) != digest()
    assert digest(size=100) != digest()
    assert digest(overlap=16) != digest()
    assert digest(tokenizer="other") != digest()


def live(content: str | None = None, version: int = 4, count: int = 3) -> DocState:
    return DocState(version, False, digest() if content is None else content, count)


def test_a_new_version_with_the_same_content_is_a_retag() -> None:
    state = live()
    verdict = judge(state, DOC.version, is_delete=False)
    assert retags(state, verdict, DOC, digest())


@pytest.mark.parametrize(
    ("state", "doc", "repair", "why"),
    [
        (None, DOC, False, "first version"),
        (DocState(4, True, None, 0), DOC, False, "deleted before"),
        (DocState(4), DOC, False, "an old row without a hash"),
        (live("other"), DOC, False, "content changed"),
        (live(count=0), DOC, False, "no chunk count known"),
        (live(), DOC, True, "a repair replay re-chunks"),
        (live(version=5), DOC, False, "the same version (CURRENT)"),
        (live(version=6), DOC, False, "an older version (STALE)"),
    ],
)
def test_no_retag(state: DocState | None, doc: RawDocument, repair: bool, why: str) -> None:
    verdict = judge(state, doc.version, is_delete=False, repair=repair)
    assert not retags(state, verdict, doc, digest(doc), repair=repair), why


def test_a_delete_is_never_a_retag() -> None:
    gone = RawDocument("acme", "a.md", 5, op=DELETE)
    assert not retags(live(), judge(live(), 5, is_delete=True), gone, None)


def test_the_retag_record_carries_the_new_version_and_the_previous_in_its_header() -> None:
    record = retag_chunk(DOC, live(), digest())
    assert (record.version, record.chunk_count, record.text, record.op) == (5, 3, "", UPSERT)
    assert (record.content_hash, record.metadata, record.key) == (digest(), DOC.metadata, DOC.key)
    headers = retag_headers(4)
    assert headers == [(RETAG_HEADER, b"4")]
    assert retag_of(headers) == 4 and retag_of({RETAG_HEADER: b"4"}) == 4
    assert retag_of([("rag-repair", b"1")]) is None and retag_of(None) is None


# --- the embed stage --------------------------------------------------------------------------


def chunk(version: int, index: int, count: int, text: str) -> Chunk:
    return Chunk("acme", "a.md", version, point_id("acme", "a.md", index), index, count, text, content_hash(text))


def embed_plan(chunks: list[Chunk], previous: list[int | None], docs: dict[str, list[object] | None]) -> object:
    slots = {slot_of(c): None for c, p in zip(chunks, previous, strict=True) if p is None}
    return plan_embeddings(chunks, [False] * len(chunks), docs, slots, previous)


def test_embed_forwards_a_retag_of_the_version_it_emitted_in_full() -> None:
    record = retag_chunk(DOC, live(), digest())
    plan = embed_plan([record], [4], {"acme/a.md": [4, 3, False]})
    assert plan.actions == [Action.RETAG]  # type: ignore[attr-defined]
    # the doc row moves; the slot rows keep the version they were emitted at
    assert plan.writes_by_position == {0: [("doc", "acme/a.md", [5, 3, False])]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "row",
    [None, [3, 3, False], [4, 2, False], [4, 0, True]],
    ids=["never emitted", "previous version not emitted in full", "another count", "deleted"],
)
def test_embed_refuses_a_retag_it_cannot_vouch_for(row: list[object] | None) -> None:
    plan = embed_plan([retag_chunk(DOC, live(), digest())], [4], {"acme/a.md": row})
    assert plan.actions == [Action.REFUSE]  # type: ignore[attr-defined]
    assert "verify --repair" in plan.refusals[0] and not plan.writes_by_position  # type: ignore[attr-defined]


def test_embed_drops_a_replayed_retag() -> None:
    plan = embed_plan([retag_chunk(DOC, live(), digest())], [4], {"acme/a.md": [5, 3, False]})
    assert plan.actions == [Action.DROP]  # type: ignore[attr-defined]


def test_embed_after_a_retag_the_previous_chunks_are_dropped_and_the_next_edit_reuses() -> None:
    v4 = [chunk(4, i, 2, t) for i, t in enumerate(["x", "y"])]
    retag = retag_chunk(dataclasses.replace(DOC, version=5), live(count=2), digest())
    v6 = [chunk(6, 0, 2, "x"), chunk(6, 1, 2, "z")]
    batch = [*v4, retag, *v4, *v6]  # a replay of v4 after the retag, then an edit
    previous: list[int | None] = [None, None, 4, None, None, None, None]
    plan = embed_plan(batch, previous, {"acme/a.md": None})
    assert plan.actions == [  # type: ignore[attr-defined]
        Action.EMBED,
        Action.EMBED,
        Action.RETAG,
        Action.DROP,
        Action.DROP,
        Action.REUSE,  # the slot row still says v4 with text "x": lagging the doc row is fine
        Action.EMBED,
    ]


# --- the index stage ------------------------------------------------------------------------------


def upsert(version: int, index: int, count: int) -> EmbeddingUpsert:
    text = f"t{index}"
    return EmbeddingUpsert(
        "acme",
        "a.md",
        version,
        point_id("acme", "a.md", index),
        index,
        count,
        text,
        content_hash(text),
        b"\0" * 8,
        "m",
        2,
    )


def retag_item(version: int = 5, count: int = 3) -> EmbeddingUpsert:
    return EmbeddingUpsert.of(
        retag_chunk(dataclasses.replace(DOC, version=version), live(count=count), "h"), b"", "m", 0
    )


def test_index_plans_one_retag_per_document_and_moves_its_row() -> None:
    plan = plan_batch([retag_item()], {"acme/a.md": DocState(4)}, {}, None, [4])
    assert [(r.position, r.previous) for r in plan.retags] == [(0, 4)]
    assert plan.verdicts == [Verdict.APPLY] and plan.doc_states == {"acme/a.md": DocState(5)}
    assert not (plan.upserts or plan.reuses or plan.cleanups or plan.deletes or plan.slots)


def test_index_retag_payload_is_the_document_level_keys_of_the_new_version() -> None:
    body = retag_payload(retag_item())
    assert body == {"tenant_id": "acme", "doc_id": "a.md", "chunk_count": 3, "version": 5, "metadata": DOC.metadata}
    assert set(payload(retag_item())) - set(body) == {"chunk_index", "text", "content_hash", "model"}


@pytest.mark.parametrize(
    ("state", "verdict"),
    [(DocState(5), Verdict.DUPLICATE), (DocState(6), Verdict.STALE), (DocState(5, True), Verdict.STALE)],
)
def test_index_skips_a_replayed_or_superseded_retag(state: DocState, verdict: Verdict) -> None:
    plan = plan_batch([retag_item()], {"acme/a.md": state}, {}, None, [4])
    assert plan.verdicts == [verdict] and not plan.retags and not plan.doc_states


@pytest.mark.parametrize("state", [None, DocState(3), DocState(4, True)], ids=["absent", "older", "deleted"])
def test_index_leaves_a_retag_of_a_version_it_has_no_row_for_to_the_stores_count(state: DocState | None) -> None:
    # a reindex or a restore may hold the points without this stage's row: the store counts them
    plan = plan_batch([retag_item()], {"acme/a.md": state}, {}, None, [4])
    assert [(r.position, r.previous) for r in plan.retags] == [(0, 4)] and plan.verdicts == [Verdict.APPLY]


def test_index_after_a_retag_an_edit_and_a_delete_apply_with_lagging_slot_rows() -> None:
    slots: dict[str, list[object] | None] = {f"acme/a.md/{i}": [4, content_hash(f"t{i}")] for i in range(3)}
    items = [retag_item(), upsert(6, 0, 2), upsert(6, 1, 2)]
    plan = plan_batch(items, {"acme/a.md": DocState(4)}, slots, None, [4, None, None])
    assert plan.verdicts == [Verdict.APPLY, Verdict.APPLY, Verdict.CURRENT]
    assert plan.upserts == {("acme", 6, False): [1, 2]} and plan.cleanups == [("acme", "a.md", 6)]
    gone = dataclasses.replace(upsert(7, 0, 0), op=DELETE)
    plan = plan_batch([gone], {"acme/a.md": DocState(5)}, {}, None, [None])
    assert plan.deletes == [("acme", "a.md", 7)]
