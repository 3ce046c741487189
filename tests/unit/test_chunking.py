"""Token-aware chunking: windows, overlap, word boundaries and deterministic chunk identities."""

from __future__ import annotations

import hashlib
import re
import tempfile
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from rag_streams.errors import BadInput
from rag_streams.rules import ids
from rag_streams.rules.chunking import WhitespaceTokenizer, chunk_document, token_windows
from rag_streams.rules.records import DELETE, UPSERT, RawDocument

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "rag-streams-hypothesis")

TOKENIZER = WhitespaceTokenizer()


@st.composite
def spans_and_params(draw: st.DrawFn) -> tuple[list[tuple[int, int]], int, int]:
    """Token spans of a synthetic text (each token 1-5 chars, glued to the previous one or after a space)."""
    n = draw(st.integers(0, 300))
    spans, pos = [], 0
    for i in range(n):
        if i and draw(st.booleans()):
            pos += draw(st.integers(1, 3))
        length = draw(st.integers(1, 5))
        spans.append((pos, pos + length))
        pos += length
    size = draw(st.integers(1, 40))
    overlap = draw(st.integers(0, size - 1))
    return spans, size, overlap


@settings(max_examples=400, deadline=None, database=None)
@given(spans_and_params())
def test_token_windows_invariants(case: tuple[list[tuple[int, int]], int, int]) -> None:
    spans, size, overlap = case
    n = len(spans)
    windows = token_windows(spans, size, overlap)
    if n == 0:
        assert windows == []
        return
    assert windows[0][0] == 0
    assert windows[-1][1] == n
    covered: set[int] = set()
    for start, end in windows:
        assert 0 <= start < end <= n
        assert end - start <= size
        covered.update(range(start, end))
    assert covered == set(range(n))
    for (s1, e1), (s2, e2) in pairwise(windows):
        assert s2 > s1, "each window starts after the previous start"
        assert e2 >= e1, "a window never ends before the previous end"
        assert s2 <= e1, "no gap between consecutive windows"
        if overlap > 0:
            assert s2 < e1, "consecutive windows share at least one token"


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (-1, 0), (5, 5), (5, 6), (5, -1)])
def test_token_windows_rejects_bad_parameters(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        token_windows([(0, 1)], size, overlap)


def test_token_windows_without_overlap_partition_the_tokens() -> None:
    spans = TOKENIZER.token_spans(" ".join(f"w{i}" for i in range(10)))
    assert token_windows(spans, 4, 0) == [(0, 4), (4, 8), (8, 10)]


def _doc(text: str, **changes: object) -> RawDocument:
    fields: dict[str, object] = {
        "tenant_id": "acme",
        "doc_id": "notes/a.md",
        "version": 7,
        "text": text,
        "metadata": {"lang": "en"},
        "produced_at": 123,
    }
    fields.update(changes)
    return RawDocument(**fields)  # type: ignore[arg-type]


TEXT = " ".join(f"word{i}, and more." for i in range(120))


def test_chunks_are_numbered_and_identified_by_slot() -> None:
    chunks = chunk_document(_doc(TEXT), TOKENIZER, size=20, overlap=5)
    n = len(chunks)
    assert n > 5
    assert [c.chunk_index for c in chunks] == list(range(n))
    for c in chunks:
        assert c.chunk_count == n
        assert c.chunk_id == ids.point_id("acme", "notes/a.md", c.chunk_index)
        assert c.content_hash == hashlib.sha256(c.text.encode("utf-8")).hexdigest()
        assert c.text in TEXT
        assert len(TOKENIZER.token_spans(c.text)) <= 20
        assert (c.tenant_id, c.doc_id, c.version, c.op) == ("acme", "notes/a.md", 7, UPSERT)
        assert c.metadata == {"lang": "en"}
        assert c.produced_at == 123
    assert len({c.chunk_id for c in chunks}) == n


def test_chunks_cover_every_word_in_order() -> None:
    chunks = chunk_document(_doc(TEXT), TOKENIZER, size=20, overlap=5)
    numbered = [[int(n) for n in re.findall(r"word(\d+)", c.text)] for c in chunks]
    assert TEXT.startswith(chunks[0].text)
    assert TEXT.endswith(chunks[-1].text)
    assert all(nums == list(range(nums[0], nums[-1] + 1)) for nums in numbered)
    assert [nums[0] for nums in numbered] == sorted({nums[0] for nums in numbered})
    assert set().union(*numbered) == set(range(120))


def test_chunking_is_deterministic() -> None:
    first = chunk_document(_doc(TEXT), TOKENIZER, size=16, overlap=4)
    second = chunk_document(_doc(TEXT), TOKENIZER, size=16, overlap=4)
    assert first == second


def test_point_ids_differ_per_tenant_doc_and_index() -> None:
    base = ids.point_id("acme", "a.md", 0)
    assert base == ids.point_id("acme", "a.md", 0)
    assert (
        len({base, ids.point_id("beta", "a.md", 0), ids.point_id("acme", "b.md", 0), ids.point_id("acme", "a.md", 1)})
        == 4
    )


def test_a_new_version_reuses_the_slot_ids() -> None:
    v1 = chunk_document(_doc(TEXT, version=1), TOKENIZER, size=20, overlap=5)
    v2 = chunk_document(_doc(TEXT.upper(), version=2), TOKENIZER, size=20, overlap=5)
    assert [c.chunk_id for c in v1] == [c.chunk_id for c in v2]
    assert [c.content_hash for c in v1] != [c.content_hash for c in v2]


def test_delete_yields_one_marker_chunk() -> None:
    chunks = chunk_document(_doc("", op=DELETE, version=9), TOKENIZER, size=20, overlap=5)
    assert len(chunks) == 1
    (marker,) = chunks
    assert marker.op == DELETE
    assert marker.chunk_count == 0
    assert (marker.tenant_id, marker.doc_id, marker.version) == ("acme", "notes/a.md", 9)


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_text_without_tokens_is_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        chunk_document(_doc(text), TOKENIZER, size=20, overlap=5)


def test_cuts_happen_at_whitespace_between_long_words() -> None:
    words = [f"long{i}-word-of-many-tokens" for i in range(80)]
    text = " ".join(words)
    assert len(TOKENIZER.token_spans(text)) == 9 * len(words)
    chunks = chunk_document(_doc(text), TOKENIZER, size=30, overlap=6)
    assert len(chunks) > 3
    for c in chunks:
        start = text.index(c.text)
        end = start + len(c.text)
        assert start == 0 or text[start - 1] == " ", c.text
        assert end == len(text) or text[end] == " ", c.text
        assert set(c.text.split()) <= set(words)


def _glued_run(tokens: int) -> str:
    """A whitespace-free run of ``tokens`` tokens, like a long URL or a base64 blob."""
    return ("a/" * tokens)[:tokens]


def test_each_chunk_adds_new_text_after_a_long_unbroken_run() -> None:
    text = " ".join(_glued_run(k) for k in [2, 121, 1, 109, 1])
    spans = TOKENIZER.token_spans(text)
    windows = token_windows(spans, 200, 32)
    assert all(e2 > e1 for (_, e1), (_, e2) in pairwise(windows)), windows
    chunks = chunk_document(_doc(text), TOKENIZER, size=200, overlap=32)
    assert len(chunks) == len(windows)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.text(alphabet="abcdéß,.!?-", min_size=1, max_size=12), min_size=1, max_size=150),
    st.integers(2, 30),
    st.data(),
)
def test_chunk_texts_are_substrings_covering_the_text(words: list[str], size: int, data: st.DataObject) -> None:
    text = " ".join(words)
    spans = TOKENIZER.token_spans(text)
    assume(spans)
    overlap = data.draw(st.integers(0, size - 1))
    chunks = chunk_document(_doc(text), TOKENIZER, size=size, overlap=overlap)
    for c in chunks:
        assert c.text in text
        assert 1 <= len(TOKENIZER.token_spans(c.text)) <= size
    assert text[spans[0][0] :].startswith(chunks[0].text)
    assert text[: spans[-1][1]].endswith(chunks[-1].text)
    assert sum(len(TOKENIZER.token_spans(c.text)) for c in chunks) >= len(spans)
