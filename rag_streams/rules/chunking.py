"""Token-aware chunking: windows of the model's own tokens, cut at word boundaries, with overlap.

A character splitter cannot know how many tokens a chunk has; the model silently truncates
anything past its max sequence length. Here every chunk is a window of at most ``size``
tokens of the embedding model's tokenizer, so nothing is lost to truncation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from rag_streams.errors import BadInput
from rag_streams.rules.ids import content_hash, point_id
from rag_streams.rules.records import DELETE, Chunk, RawDocument

__all__ = ["Tokenizer", "WhitespaceTokenizer", "chunk_document", "token_windows"]

Span = tuple[int, int]


class Tokenizer(Protocol):
    def token_spans(self, text: str) -> Sequence[Span]:
        """Character (start, end) of each token of ``text``, special tokens excluded."""


class WhitespaceTokenizer:
    """A tokenizer for tests and tools: words and punctuation marks are tokens."""

    _TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

    def token_spans(self, text: str) -> list[Span]:
        return [m.span() for m in self._TOKEN.finditer(text)]


def token_windows(spans: Sequence[Span], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token index windows [start, end) of at most ``size`` tokens, consecutive ones sharing ~``overlap``.

    Cuts prefer word boundaries (a token preceded by whitespace) in the second half of a
    window, so re-tokenizing a chunk's text gives the same tokens; a single word longer
    than a window is cut inside.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError("need size > 0 and 0 <= overlap < size")
    n = len(spans)
    starts_word = [i == 0 or spans[i][0] > spans[i - 1][1] for i in range(n)]
    windows: list[tuple[int, int]] = []
    start = prev_end = 0
    while start < n:
        end = min(start + size, n)
        if end < n:
            # every window must add text beyond the previous one
            floor = max(start + size // 2, prev_end)
            end = next((b for b in range(end, floor, -1) if starts_word[b]), end)
        prev_end = end
        windows.append((start, end))
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        back = nxt  # start the next window at a word start: walk back (more overlap), never behind
        while back > start + 1 and not starts_word[back]:
            back -= 1
        start = back if starts_word[back] else nxt
    return windows


def chunk_document(doc: RawDocument, tokenizer: Tokenizer, *, size: int, overlap: int) -> list[Chunk]:
    """The chunks of an accepted document version (or the one DELETE marker). Pure."""
    if doc.op == DELETE:
        return [
            Chunk(
                tenant_id=doc.tenant_id,
                doc_id=doc.doc_id,
                version=doc.version,
                chunk_id="",
                chunk_index=0,
                chunk_count=0,
                text="",
                content_hash="",
                op=DELETE,
                metadata=doc.metadata,
                produced_at=doc.produced_at,
            )
        ]
    spans = tokenizer.token_spans(doc.text)
    if not spans:
        raise BadInput("text has no tokens")
    windows = token_windows(spans, size, overlap)
    chunks = []
    for index, (start, end) in enumerate(windows):
        text = doc.text[spans[start][0] : spans[end - 1][1]]
        chunks.append(
            Chunk(
                tenant_id=doc.tenant_id,
                doc_id=doc.doc_id,
                version=doc.version,
                chunk_id=point_id(doc.tenant_id, doc.doc_id, index),
                chunk_index=index,
                chunk_count=len(windows),
                text=text,
                content_hash=content_hash(text),
                metadata=doc.metadata,
                produced_at=doc.produced_at,
            )
        )
    return chunks
