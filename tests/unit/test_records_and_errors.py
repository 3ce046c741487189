"""Input rules, error classification, retries, search bodies, versions, file collection, limits, embeddings."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_streams import errors
from rag_streams.adapters.embedding import from_bytes, to_bytes
from rag_streams.adapters.producer import next_version
from rag_streams.adapters.ratelimit import UpsertLimiter
from rag_streams.commands.ops import collect_files
from rag_streams.errors import BadInput, PermanentError, TransientError, is_transient, retry_transient
from rag_streams.http.search import MAX_K, SearchRequest, parse_search, wait_for_versions
from rag_streams.rules.records import DELETE, RawDocument, doc_key, from_json_obj, validate_raw
from rag_streams.testing import HashingEmbedder

MAX = 1000


def raw(**changes: Any) -> RawDocument:
    fields: dict[str, Any] = {"tenant_id": "acme", "doc_id": "a.md", "version": 1, "text": "hello"}
    fields.update(changes)
    return RawDocument(**fields)


# --------------------------------------------------------------------------- validate_raw
@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"tenant_id": "Acme"}, id="tenant-uppercase"),
        pytest.param({"tenant_id": "a" * 65}, id="tenant-65-chars"),
        pytest.param({"tenant_id": ""}, id="tenant-empty"),
        pytest.param({"tenant_id": "ac me"}, id="tenant-space"),
        pytest.param({"tenant_id": "acme/beta"}, id="tenant-slash"),
        pytest.param({"tenant_id": "acme\n"}, id="tenant-trailing-newline"),
        pytest.param({"doc_id": ""}, id="doc-id-empty"),
        pytest.param({"version": -1}, id="negative-version"),
        pytest.param({"op": "MERGE"}, id="unknown-op"),
        pytest.param({"op": "upsert"}, id="lowercase-op"),
        pytest.param({"text": ""}, id="empty-text"),
        pytest.param({"text": " \n\t "}, id="whitespace-text"),
        pytest.param({"text": "x" * (MAX + 1)}, id="oversize-text"),
        pytest.param({"text": "é" * (MAX // 2 + 1)}, id="oversize-in-utf8-bytes"),
    ],
)
def test_validate_raw_rejects(changes: dict[str, Any]) -> None:
    with pytest.raises(BadInput):
        validate_raw(raw(**changes), max_bytes=MAX)


@pytest.mark.parametrize(
    "doc",
    [
        raw(),
        raw(tenant_id="a" * 64),
        raw(tenant_id="t_1-x", version=0),
        raw(text="x" * MAX),
        raw(op=DELETE, text=""),
    ],
)
def test_validate_raw_accepts(doc: RawDocument) -> None:
    assert validate_raw(doc, max_bytes=MAX) is doc


def test_doc_key_is_tenant_slash_doc() -> None:
    assert doc_key("acme", "x/y.md") == "acme/x/y.md"
    assert raw(doc_id="x/y.md").key == "acme/x/y.md"


# --------------------------------------------------------------------------- from_json_obj
def test_from_json_obj_builds_a_document_with_defaults() -> None:
    doc = from_json_obj({"tenant_id": "acme", "doc_id": "a", "version": "12", "text": "hi"})
    assert doc == RawDocument(tenant_id="acme", doc_id="a", version=12, text="hi")


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param([], id="not-an-object"),
        pytest.param("text", id="string"),
        pytest.param({"doc_id": "a", "version": 1}, id="missing-tenant"),
        pytest.param({"tenant_id": "acme", "doc_id": "a"}, id="missing-version"),
        pytest.param({"tenant_id": "acme", "doc_id": "a", "version": "one"}, id="version-not-a-number"),
        pytest.param({"tenant_id": "acme", "doc_id": "a", "version": None}, id="version-null"),
        pytest.param({"tenant_id": "acme", "doc_id": "a", "version": 1, "metadata": ["x"]}, id="metadata-list"),
        pytest.param({"tenant_id": "acme", "doc_id": "a", "version": 1, "metadata": {"k": 1}}, id="metadata-int"),
        pytest.param({"tenant_id": "acme", "doc_id": "a", "version": 1, "produced_at": "soon"}, id="bad-produced-at"),
    ],
)
def test_from_json_obj_rejects(obj: Any) -> None:
    with pytest.raises(BadInput):
        from_json_obj(obj)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "exc", [ConnectionError("x"), ConnectionRefusedError(), TimeoutError(), asyncio.TimeoutError(), TransientError("x")]
)
def test_transient_errors(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [BadInput("x"), PermanentError("x"), ValueError("x"), KeyError("x"), RuntimeError()])
def test_permanent_errors(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_error_codes() -> None:
    assert (BadInput.code, PermanentError.code, TransientError.code) == ("bad_input", "permanent", "transient")
    assert issubclass(BadInput, PermanentError)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(errors.asyncio, "sleep", fake_sleep)
    return delays


async def test_retry_transient_retries_then_succeeds(sleeps: list[float]) -> None:
    calls = 0

    async def op() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("qdrant down")
        return "ok"

    assert await retry_transient(op, what="upsert", base_delay=0.2, max_delay=10.0) == "ok"
    assert calls == 3
    assert len(sleeps) == 2
    assert 0.1 <= sleeps[0] <= 0.2
    assert 0.2 <= sleeps[1] <= 0.4


async def test_retry_transient_does_not_retry_a_permanent_error(sleeps: list[float]) -> None:
    calls = 0

    async def op() -> None:
        nonlocal calls
        calls += 1
        raise BadInput("bad")

    with pytest.raises(BadInput):
        await retry_transient(op, what="upsert")
    assert calls == 1
    assert sleeps == []


async def test_retry_transient_gives_up_after_attempts(sleeps: list[float]) -> None:
    calls = 0

    async def op() -> None:
        nonlocal calls
        calls += 1
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await retry_transient(op, what="upsert", attempts=4, base_delay=1.0, max_delay=2.0)
    assert calls == 4
    assert len(sleeps) == 3
    assert max(sleeps) <= 2.0


# --------------------------------------------------------------------------- search bodies
def test_parse_search_defaults() -> None:
    assert parse_search({"query": "what is a tide pool?"}) == SearchRequest(query="what is a tide pool?", k=5)


@pytest.mark.parametrize("k", [1, MAX_K])
def test_parse_search_k_bounds_accepted(k: int) -> None:
    assert parse_search({"query": "q", "k": k}).k == k


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"query": "q", "k": 0}, id="k-zero"),
        pytest.param({"query": "q", "k": MAX_K + 1}, id="k-too-big"),
        pytest.param({"query": "q", "k": -3}, id="k-negative"),
        pytest.param({"query": "q", "k": True}, id="k-bool"),
        pytest.param({"query": "q", "k": 2.0}, id="k-float"),
        pytest.param({"query": "q", "k": "5"}, id="k-string"),
        pytest.param({"query": ""}, id="empty-query"),
        pytest.param({"query": "   "}, id="blank-query"),
        pytest.param({}, id="no-query"),
        pytest.param({"query": 5}, id="query-not-string"),
        pytest.param({"query": "x" * 5000}, id="query-too-long"),
        pytest.param({"query": "q", "filter": ["a.md"]}, id="filter-list"),
        pytest.param({"query": "q", "filter": "a.md"}, id="filter-string"),
        pytest.param({"query": "q", "filter": {"doc_id": 3}}, id="doc-id-int"),
        pytest.param({"query": "q", "filter": {"doc_id": ["a", 3]}}, id="doc-id-mixed-list"),
        pytest.param(["query"], id="body-not-object"),
    ],
)
def test_parse_search_rejects(body: Any) -> None:
    with pytest.raises(BadInput):
        parse_search(body)


def test_parse_search_doc_id_filter_string_or_list() -> None:
    assert parse_search({"query": "q", "filter": {"doc_id": "a.md"}}).doc_ids == ("a.md",)
    assert parse_search({"query": "q", "filter": {"doc_id": ["a.md", "b.md"]}}).doc_ids == ("a.md", "b.md")
    assert parse_search({"query": "q", "filter": {}}).doc_ids == ()


# --------------------------------------------------------------------------- producer versions
def test_next_version_is_strictly_increasing_epoch_microseconds() -> None:
    before = time.time_ns() // 1000
    versions = [next_version() for _ in range(1000)]
    assert all(b > a for a, b in pairwise(versions))
    assert versions[0] >= before
    assert versions[-1] - versions[0] < 60_000_000


# --------------------------------------------------------------------------- collect_files
def test_collect_files_uses_relative_posix_doc_ids(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "guides" / "deep").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "guides" / ".cache").mkdir()
    for rel in ["a.md", "guides/b.md", "guides/deep/c.txt", ".hidden.md", ".git/config", "guides/.cache/x.md"]:
        (root / rel).write_text(rel)
    single = tmp_path / "single.md"
    single.write_text("one")
    files = collect_files([root, single])
    assert [doc_id for doc_id, _ in files] == ["a.md", "guides/b.md", "guides/deep/c.txt", "single.md"]
    assert all(path.read_text() in (doc_id, "one") for doc_id, path in files)


def test_collect_files_rejects_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no such file or folder"):
        collect_files([tmp_path / "absent"])


# --------------------------------------------------------------------------- rate limiter
async def test_upsert_limiter_spreads_twice_the_rate_over_a_second() -> None:
    limiter = UpsertLimiter(rate=10, tenant_rate=1000)
    started = time.monotonic()
    for _ in range(20):
        await limiter.acquire("acme", 1)
    assert time.monotonic() - started >= 0.9


async def test_upsert_limiter_tenant_bucket_limits_one_tenant() -> None:
    limiter = UpsertLimiter(rate=1000, tenant_rate=10)
    assert limiter.max_batch == 10
    started = time.monotonic()
    await limiter.acquire("acme", 10)
    await limiter.acquire("acme", 10)
    assert time.monotonic() - started >= 0.9


async def test_upsert_limiter_tenants_have_separate_buckets() -> None:
    limiter = UpsertLimiter(rate=1000, tenant_rate=10)
    started = time.monotonic()
    await limiter.acquire("acme", 10)
    await limiter.acquire("beta", 10)
    assert time.monotonic() - started < 0.5


# --------------------------------------------------------------------------- embeddings
def test_hashing_embedder_rows_are_unit_norm_float32() -> None:
    emb = HashingEmbedder(dim=64)
    vectors = emb.embed(["the quick brown fox", "", "!!!", "tide pools at low tide"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (4, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert emb.calls == [4]


def test_hashing_embedder_is_deterministic_and_similarity_follows_shared_words() -> None:
    emb = HashingEmbedder()
    query, similar, unrelated = emb.embed(
        [
            "kafka log compaction keeps the latest record per key",
            "log compaction in kafka keeps the latest value for each key",
            "sourdough bread needs a lively starter and a long proof",
        ]
    )
    assert float(query @ similar) > float(query @ unrelated) + 0.3
    assert np.array_equal(emb.embed(["kafka log compaction keeps the latest record per key"])[0], query)


def test_vector_bytes_are_little_endian_float32() -> None:
    vec = np.array([1.0, -2.5, 0.125], dtype=np.float32)
    data = to_bytes(vec)
    assert data == b"\x00\x00\x80\x3f" + b"\x00\x00\x20\xc0" + b"\x00\x00\x00\x3e"
    assert to_bytes(np.array([1.0, -2.5, 0.125], dtype=np.float64)) == data
    back = from_bytes(data, 3)
    assert back.dtype == np.dtype("<f4")
    assert np.array_equal(back, vec)


@pytest.mark.parametrize(("data", "dim"), [(b"\x00" * 8, 3), (b"\x00" * 16, 3), (b"", 1)])
def test_from_bytes_rejects_wrong_lengths(data: bytes, dim: int) -> None:
    with pytest.raises(ValueError):
        from_bytes(data, dim)


def test_from_bytes_rejects_a_partial_float() -> None:
    with pytest.raises(ValueError):
        from_bytes(b"\x00" * 13, 3)


def test_raw_tombstone_deletes_the_accepted_version() -> None:
    from rag_streams.rules.records import DELETE, tombstone_delete

    doc = tombstone_delete(b"acme/guide/intro.md", 42)
    assert doc is not None
    assert (doc.tenant_id, doc.doc_id, doc.version, doc.op) == ("acme", "guide/intro.md", 42, DELETE)
    assert tombstone_delete(b"acme/never-seen.md", None) is None


@pytest.mark.parametrize("key", [None, b"", b"no-slash", b"BAD TENANT/x"])
def test_raw_tombstone_with_a_bad_key_is_bad_input(key: bytes | None) -> None:
    from rag_streams.rules.records import tombstone_delete

    with pytest.raises(BadInput):
        tombstone_delete(key, 1)


def test_parse_search_reads_min_version() -> None:
    req = parse_search({"query": "q", "min_version": {"doc-1": 3, "doc-2": 1}})
    assert req.min_version == {"doc-1": 3, "doc-2": 1}
    assert parse_search({"query": "q"}).min_version == {}


@pytest.mark.parametrize(
    "value",
    [
        [],
        "doc-1",
        {"doc-1": 0},
        {"doc-1": -2},
        {"doc-1": "3"},
        {"doc-1": True},
        {"": 1},
        {f"d{i}": 1 for i in range(101)},
    ],
)
def test_parse_search_rejects_a_bad_min_version(value: Any) -> None:
    with pytest.raises(BadInput, match="min_version"):
        parse_search({"query": "q", "min_version": value})


class VersionsSeen:
    """``indexed`` for wait_for_versions: answers from a script, one step per call, on a fake clock."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps, self.asked, self.now = steps, list[dict[str, int]](), 0.0

    async def __call__(self, wanted: Any) -> dict[str, int]:
        self.asked.append(dict(wanted))
        step = self.steps[min(len(self.asked), len(self.steps)) - 1]
        if isinstance(step, Exception):
            raise step
        return dict(step)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_wait_for_versions_returns_once_every_version_is_indexed() -> None:
    seen = VersionsSeen([{}, {"a": 2}, {"a": 2, "b": 5}])
    pending = await wait_for_versions(seen, {"a": 2, "b": 4}, timeout_s=5, clock=lambda: seen.now, sleep=seen.sleep)
    assert pending == {}
    assert seen.asked == [{"a": 2, "b": 4}, {"a": 2, "b": 4}, {"b": 4}]  # only what is still pending


async def test_wait_for_versions_gives_up_at_the_bound_with_what_is_pending() -> None:
    seen = VersionsSeen([{"a": 1}])
    pending = await wait_for_versions(seen, {"a": 2, "b": 1}, timeout_s=2, clock=lambda: seen.now, sleep=seen.sleep)
    assert pending == {"a": 1, "b": 0}
    assert 2 <= seen.now <= 2.01 and len(seen.asked) > 3  # polled until the bound, not past it


async def test_wait_for_versions_counts_a_transient_failure_as_not_yet() -> None:
    seen = VersionsSeen([TransientError("store down"), {"a": 2}])
    pending = await wait_for_versions(seen, {"a": 2}, timeout_s=5, clock=lambda: seen.now, sleep=seen.sleep)
    assert pending == {} and len(seen.asked) == 2
    with pytest.raises(ValueError):
        await wait_for_versions(VersionsSeen([ValueError("bug")]), {"a": 1}, timeout_s=5)


def test_kafka_errors_the_protocol_calls_retriable_are_transient() -> None:
    """One classification for every retry loop (errors.retry_transient): the lag reader's retries of a
    fresh cluster's missing group coordinator go through it too."""
    from aiokafka.errors import GroupCoordinatorNotAvailableError, TopicAuthorizationFailedError

    assert GroupCoordinatorNotAvailableError.retriable and is_transient(GroupCoordinatorNotAvailableError())
    assert not TopicAuthorizationFailedError.retriable and not is_transient(TopicAuthorizationFailedError())
