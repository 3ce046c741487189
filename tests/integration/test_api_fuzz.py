"""Fuzzing a real worker's HTTP API against the OpenAPI document it serves (GET /openapi.json):
schemathesis draws requests for every documented operation, both valid ones (positive) and ones
that break the document's rules (negative). Whatever the input: no 5xx, every error answer is the
JSON ``{"error", "detail"}`` body, every answer has a documented status and (for the valid
requests) fits the documented schema, and the worker is alive and healthy afterwards, its log free
of tracebacks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration
EXAMPLES = 15  # per operation and mode: ~450 requests, about a minute on the 2-core machine


async def test_the_api_survives_fuzzing_against_its_own_openapi_document(idle_pipeline: Any) -> None:
    pipeline = idle_pipeline
    pipeline.env["RAG_MIN_VERSION_WAIT_S"] = "0.5"  # min_version for documents never written: short waits
    await pipeline.restart()
    try:
        await pipeline.wait_for(lambda: _ready(pipeline), timeout=120, what="the worker ready (GET /readyz 200)")
        base = f"http://127.0.0.1:{pipeline.port}"
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=30)  # the document it serves
        text = "Sea otters hold hands while they sleep."  # a tenant with data: searches that find it
        status, _ = await pipeline.api("PUT", "/v1/tenants/fuzz/documents/otters.md", {"text": text, "version": 1})
        assert status == 202
        await pipeline.wait_for(lambda: pipeline.holds_exactly("fuzz", {("otters.md", 1)}), timeout=180, what="seed")

        seen: Counter[tuple[str, int]] = Counter()
        for result in schema.get_all_operations():
            operation = result.ok()
            _fuzz(operation, GenerationMode.POSITIVE, base, seen)
            if any(p.name == "tenant" for p in operation.path_parameters):  # and the tenant that has data
                _fuzz(operation, GenerationMode.POSITIVE, base, seen, path_parameters={"tenant": "fuzz"})
            if any(len(part) for part in (operation.path_parameters, operation.query, operation.body)):
                _fuzz(operation, GenerationMode.NEGATIVE, base, seen)
        print("fuzzed:", dict(sorted(seen.items())))

        assert not [k for k in seen if k[1] >= 500]
        assert {label for label, _ in seen} == {r.ok().label for r in schema.get_all_operations()}
        assert sum(seen.values()) >= 300, seen
        assert seen[("POST /v1/tenants/{tenant}/search", 200)] > 0, seen
        assert pipeline.worker.alive(), pipeline.worker.log.read_text()[-3000:]
        status, body = await pipeline.api("GET", "/healthz")
        assert (status, body) == (200, {"status": "ok"})
        status, body = await pipeline.api("PUT", "/v1/tenants/after/documents/a.md", {"text": "Still publishing."})
        assert status == 202, body
        log = pipeline.worker.log.read_text(errors="replace")
        assert "Traceback" not in log and "Error handling request" not in log, log[-4000:]
    finally:
        pipeline.worker.stop()


async def _ready(pipeline: Any) -> bool:
    status, _ = await pipeline.api("GET", "/readyz")
    return bool(status == 200)


def _fuzz(operation: Any, mode: GenerationMode, base: str, seen: Counter[tuple[str, int]], **fixed: Any) -> None:
    checks = [not_a_server_error, status_code_conformance, content_type_conformance]
    if mode is GenerationMode.POSITIVE:
        checks.append(response_schema_conformance)

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure names its case as is
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base, timeout=60)
        seen[(operation.label, response.status_code)] += 1
        case.validate_response(response, checks=checks)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error", "detail"}, (case.as_curl_command(), body)

    run()
