"""The canary: publish a known document, ask a known question, check the document is cited.

Each run publishes a NEW version of two fixed documents to the reserved tenant ``RAG_CANARY_TENANT``
(default ``rag-canary``; no real tenant may use that name): the answer and a distractor. It then
searches the query API with the known question and ``min_version`` (read-your-writes: the answer
waits for those versions, and skips the cache) until the answer document, at the published version
or later, is the top result (k = 1) from the store, or ``timeout_s`` runs out. The latency is from
the publish to the answer that cited it: the whole pipeline, chunk -> embed -> index -> search.
Nothing is written anywhere but the canary tenant's two documents, which each run replaces.

``rag-streams canary`` runs it once (exit 0 ok, 1 failed); with ``RAG_CANARY_INTERVAL_S`` > 0 the
index worker runs it every that many seconds and exports ``rag_canary_success``,
``rag_canary_latency_seconds`` and ``rag_canary_consecutive_failures`` (alert: two in a row).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiokafka.errors import KafkaError

from rag_streams.adapters.producer import DocumentProducer
from rag_streams.observability import metrics
from rag_streams.settings import Settings

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

__all__ = ["ANSWER_DOC", "DISTRACTOR_DOC", "QUESTION", "CanaryResult", "record", "register", "run_canary"]
log = logging.getLogger(__name__)

ANSWER_DOC, DISTRACTOR_DOC = "canary-answer", "canary-distractor"
ANSWER_TEXT = "The Kestrel footbridge over the river Wend was painted vermilion red in 1932 by the engineer Ada Moller."
DISTRACTOR_TEXT = "A sourdough starter needs flour, water and a warm kitchen, and it is fed twice a day."
QUESTION = "What colour is the Kestrel footbridge over the river Wend painted?"
K = 1


@dataclass(frozen=True)
class CanaryResult:
    ok: bool
    tenant: str
    version: int  #: the answer document's version this run published (0: the publish failed)
    latency_s: float | None  #: publish -> cited; None when it was not cited
    detail: str

    def line(self) -> str:
        where = f"{self.tenant}/{ANSWER_DOC} v{self.version}"
        if self.ok:
            return f"canary ok: {where} cited at rank 1 of k={K} in {self.latency_s:.2f} s (publish -> cited)"
        return f"canary FAILED: {where}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "doc_id": ANSWER_DOC, "question": QUESTION, "k": K}


def canary_api_key(settings: Settings) -> str | None:
    """The key of the canary tenant in RAG_API_KEYS(_FILE), for the worker's own runs."""
    return next((key for key, tenant in settings.api_key_tenants().items() if tenant == settings.canary_tenant), None)


async def run_canary(settings: Settings, *, timeout_s: float, api_key: str | None = None) -> CanaryResult:
    """One run (see the module's docstring). Never raises for an unavailable pipeline: that is a failure."""
    tenant = settings.canary_tenant
    started = time.monotonic()
    try:
        async with DocumentProducer(settings) as producer:
            version = await producer.upsert(tenant, ANSWER_DOC, ANSWER_TEXT, metadata={"canary": "answer"})
            distractor = await producer.upsert(tenant, DISTRACTOR_DOC, DISTRACTOR_TEXT, metadata={"canary": "other"})
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:  # the broker is down: the canary's point is to say so
        return CanaryResult(False, tenant, 0, None, f"publish failed: {type(exc).__name__}: {exc}")
    body = {"query": QUESTION, "k": K, "min_version": {ANSWER_DOC: version, DISTRACTOR_DOC: distractor}}
    deadline, detail = started + timeout_s, "not cited"
    while True:
        left = deadline - time.monotonic()
        try:
            status, answer = await _search(settings, tenant, body, api_key, min(left, settings.min_version_wait_s) + 5)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            detail = f"query API at {settings.query_api_url} unreachable: {type(exc).__name__}: {exc}"
        else:
            if status == 200 and _cited(answer, version):
                return CanaryResult(True, tenant, version, round(time.monotonic() - started, 3), "cited")
            detail = _why_not(status, answer)
        if time.monotonic() >= deadline:
            return CanaryResult(False, tenant, version, None, f"{detail} after {timeout_s:g} s")
        await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


async def _search(
    settings: Settings, tenant: str, body: dict[str, Any], api_key: str | None, timeout_s: float
) -> tuple[int, Any]:
    from rag_streams.commands.ops import api_call

    return await api_call(settings, "POST", f"/v1/tenants/{tenant}/search", body, api_key, timeout=timeout_s)


def _cited(answer: Any, version: int) -> bool:
    if not isinstance(answer, dict) or answer.get("degraded") or answer.get("source") != "store":
        return False  # an answer of the cache or of the fallback index does not prove the pipeline works
    top = answer.get("results", [])[:K]
    return any(r.get("doc_id") == ANSWER_DOC and int(r.get("version", 0)) >= version for r in top)


def _why_not(status: int, answer: Any) -> str:
    if status != 200:
        return f"search answered {status}: {answer.get('detail', answer) if isinstance(answer, dict) else answer}"
    if answer.get("degraded"):
        return f"search answered degraded (source {answer.get('source')}): the vector store is unavailable"
    if answer.get("pending"):
        return f"not indexed yet: {answer['pending']}"
    top = [(r.get("doc_id"), r.get("version")) for r in answer.get("results", [])[:K]]
    return f"the answer document is not the top result: {top}"


def record(result: CanaryResult) -> None:
    """Export a run's outcome (the worker's task; the CLI's process ends right after)."""
    metrics.canary_success.set(1 if result.ok else 0)
    if result.ok and result.latency_s is not None:
        metrics.canary_latency_seconds.set(result.latency_s)
        metrics.canary_consecutive_failures.set(0)
    else:
        metrics.canary_consecutive_failures.inc()


def register(p: Pipeline) -> None:
    """The canary task of the worker that serves the search API (the index worker, or `serve`),
    every RAG_CANARY_INTERVAL_S seconds; off when 0."""
    settings = p.settings
    if settings.canary_interval_s <= 0 or not ("index" in p.roles or not p.roles):
        return
    api_key = canary_api_key(settings)
    if settings.api_key_tenants() and api_key is None:
        log.warning(
            "RAG_API_KEYS has no key for the canary tenant %s: its searches will be refused", settings.canary_tenant
        )

    @p.app.timer(settings.canary_interval_s, name=f"{__name__}.canary")
    async def canary() -> None:
        try:
            result = await run_canary(settings, timeout_s=settings.canary_timeout_s, api_key=api_key)
        except Exception as exc:  # a bug here must not stop the worker
            log.exception("canary run failed: %r", exc)
            result = CanaryResult(False, settings.canary_tenant, 0, None, repr(exc))
        record(result)
        (log.info if result.ok else log.warning)(result.line(), extra={"tenant": settings.canary_tenant})


async def command(settings: Settings, timeout_s: float | None, as_json: bool, api_key: str | None) -> int:
    """`rag-streams canary`: one run; one line (or JSON) on stdout; exit 0 cited, 1 not."""
    import orjson

    from rag_streams.errors import CliError

    timeout_s = settings.canary_timeout_s if timeout_s is None else timeout_s
    if not 0 < timeout_s < 86400:
        raise CliError(f"--timeout must be a number of seconds > 0 (below a day), got {timeout_s:g}")
    result = await run_canary(settings, timeout_s=timeout_s, api_key=api_key or canary_api_key(settings))
    print(orjson.dumps(result.to_json()).decode() if as_json else result.line())
    return 0 if result.ok else 1
