"""Structured JSON logs: the fields operators filter on, and the API's access log."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from rag_streams.observability.logs import JsonFormatter, RepeatFilter, access_log, request_id_of


def record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("rag_streams.test", level, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_json_carries_the_structured_fields() -> None:
    line = JsonFormatter().format(
        record(
            "dead-lettered %s",
            "raw[0]@3",
            level=logging.WARNING,
            stage="chunk",
            tenant="acme",
            error_code="bad_input",
            request_id="r-1",
            duration_ms=12.5,
        )
    )
    out = orjson.loads(line)
    assert out["message"] == "dead-lettered raw[0]@3"
    assert out["level"] == "warning" and out["logger"] == "rag_streams.test"
    assert (out["stage"], out["tenant"], out["error_code"]) == ("chunk", "acme", "bad_input")
    assert (out["request_id"], out["duration_ms"]) == ("r-1", 12.5)
    assert out["ts"].endswith("Z")


def test_absent_or_none_fields_are_left_out_and_exceptions_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed", tenant=None)
        rec.exc_info = sys.exc_info()
    out = orjson.loads(JsonFormatter().format(rec))
    assert "tenant" not in out and "stage" not in out
    assert "ValueError: boom" in out["exc"]


def test_request_id_is_the_callers_or_a_new_one() -> None:
    assert request_id_of({"X-Request-ID": "abc-123"}) == "abc-123"
    generated = request_id_of({})
    assert len(generated) == 16 and generated != request_id_of({})
    assert request_id_of({"X-Request-ID": "bad\nid"}) != "bad\nid"


async def test_access_log_logs_each_request_with_tenant_and_duration() -> None:
    class Resp:
        status = 200

        def __init__(self) -> None:
            self.headers: dict[str, str] = {}

    class Req:
        method, path = "POST", "/v1/tenants/acme/search"
        headers = {"X-Request-ID": "req-7"}

    logger = logging.getLogger("rag_streams.test.api")

    @access_log(logger)
    async def post(view: object, request: object, tenant: str) -> Resp:
        return Resp()

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        response = await post(object(), Req(), tenant="acme")
    finally:
        logger.removeHandler(handler)
    assert response.headers["X-Request-ID"] == "req-7"
    (rec,) = records
    out = orjson.loads(JsonFormatter().format(rec))
    assert out["message"] == "POST /v1/tenants/acme/search 200"
    assert out["request_id"] == "req-7" and out["tenant"] == "acme"
    assert isinstance(out["duration_ms"], float) and out["duration_ms"] >= 0


def test_a_library_repeating_itself_is_let_through_once_per_window_with_the_count() -> None:
    now = [100.0]
    repeat = RepeatFilter(window_s=10.0, clock=lambda: now[0])

    def record(name: str, msg: str, *args: Any) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)

    passed = []
    for i in range(1000):  # a broker outage: the same error with its arguments, 100 a second
        now[0] = 100.0 + i / 100
        rec = record("aiokafka", "Unable connect to node with id %s: %s", 1, "Connect call failed")
        if repeat.filter(rec):
            passed.append(rec.getMessage())
    assert passed == ["Unable connect to node with id 1: Connect call failed"]  # the rest came within 10 s
    now[0] = 111.0
    late = record("aiokafka", "Unable connect to node with id %s: %s", 1, "Connect call failed")
    assert repeat.filter(late) and late.getMessage().endswith("[999 more like this in the last 11s]")
    assert repeat.filter(record("aiokafka", "another message"))  # a different message passes at once
    for _ in range(3):  # our own records are never held back (one access log line per request)
        assert repeat.filter(record("rag_streams.http.api", "GET %s %d", "/healthz", 200))
