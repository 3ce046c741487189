"""The embed stage's plan: replays are dropped, unchanged text is reused, removed slots forgotten."""

from __future__ import annotations

from rag_streams.rules.embed_plan import Action, plan_embeddings, slot_of
from rag_streams.rules.ids import content_hash, point_id
from rag_streams.rules.records import DELETE, UPSERT, Chunk


def chunk(doc: str, version: int, index: int, count: int, text: str, *, op: str = UPSERT) -> Chunk:
    return Chunk(
        tenant_id="acme",
        doc_id=doc,
        version=version,
        chunk_id=point_id("acme", doc, index),
        chunk_index=index,
        chunk_count=count,
        text=text,
        content_hash=content_hash(text),
        op=op,
    )


def doc(version: int, *texts: str) -> list[Chunk]:
    return [chunk("a", version, i, len(texts), t) for i, t in enumerate(texts)]


def delete(version: int) -> Chunk:
    return chunk("a", version, 0, 0, "", op=DELETE)


class Tables:
    """The embed stage's two tables, updated the way the agent applies a plan."""

    def __init__(self) -> None:
        self.docs: dict[str, list[object]] = {}
        self.slots: dict[str, list[object]] = {}

    def run(self, chunks: list[Chunk], repairs: list[bool] | None = None) -> list[Action]:
        plan = plan_embeddings(
            chunks,
            repairs or [False] * len(chunks),
            dict(self.docs),  # type: ignore[arg-type]
            {slot_of(c): self.slots.get(slot_of(c)) for c in chunks},
        )
        for writes in plan.writes_by_position.values():
            for table, key, value in writes:
                target = self.slots if table == "slot" else self.docs
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
        return plan.actions


def test_new_document_is_embedded() -> None:
    assert Tables().run(doc(1, "x", "y")) == [Action.EMBED, Action.EMBED]


def test_unchanged_text_is_reused_and_changed_text_embedded() -> None:
    t = Tables()
    t.run(doc(1, "x", "y"))
    assert t.run(doc(2, "x", "z")) == [Action.REUSE, Action.EMBED]
    assert t.slots["acme/a/0"] == [2, content_hash("x")]


def test_republishing_an_unchanged_corpus_costs_no_embedding() -> None:
    t = Tables()
    t.run(doc(1, "x", "y", "w"))
    assert set(t.run(doc(2, "x", "y", "w"))) == {Action.REUSE}


def test_replay_of_an_emitted_version_is_dropped() -> None:
    t = Tables()
    t.run(doc(1, "x", "y"))
    assert t.run(doc(1, "x", "y")) == [Action.DROP, Action.DROP]


def test_older_version_after_a_newer_one_is_dropped() -> None:
    t = Tables()
    t.run(doc(3, "x", "y"))
    assert t.run(doc(2, "p", "q")) == [Action.DROP, Action.DROP]


def test_slot_removed_by_a_shrink_is_embedded_again_when_its_text_returns() -> None:
    t = Tables()
    t.run(doc(1, "x", "y", "w"))
    t.run(doc(2, "x"))  # the index stage deletes slots 1 and 2 (version < 2)
    assert "acme/a/2" not in t.slots
    assert t.run(doc(3, "x", "y", "w")) == [Action.REUSE, Action.EMBED, Action.EMBED]


def test_text_after_a_delete_is_embedded_again() -> None:
    t = Tables()
    t.run(doc(1, "x", "y"))
    assert t.run([delete(2)]) == [Action.FORWARD]
    assert t.slots == {}
    assert t.run(doc(3, "x", "y")) == [Action.EMBED, Action.EMBED]


def test_replayed_delete_is_dropped_not_forwarded_twice() -> None:
    t = Tables()
    t.run(doc(1, "x", "y"))
    assert t.run([delete(2)]) == [Action.FORWARD]
    assert t.run([delete(2)]) == [Action.DROP]
    assert t.run([delete(2)], [True]) == [Action.FORWARD]  # a repair passes on


def test_stale_delete_is_dropped_and_a_newer_one_forwarded() -> None:
    t = Tables()
    t.run(doc(3, "x"))
    assert t.run([delete(2)]) == [Action.DROP]
    assert t.docs["acme/a"] == [3, 1, False]
    assert t.run([delete(4)]) == [Action.FORWARD]


def test_repair_replay_is_embedded_even_when_already_emitted() -> None:
    t = Tables()
    t.run(doc(1, "x", "y"))
    assert t.run(doc(1, "x", "y"), [True, True]) == [Action.EMBED, Action.EMBED]


def test_plan_does_not_mutate_given_tables() -> None:
    docs: dict[str, list[object] | None] = {"acme/a": [1, 2, False]}
    slots: dict[str, list[object] | None] = {"acme/a/0": [1, content_hash("x")]}
    plan_embeddings(doc(2, "x"), [False], docs, slots)
    assert docs == {"acme/a": [1, 2, False]} and slots == {"acme/a/0": [1, content_hash("x")]}
