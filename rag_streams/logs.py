"""Logging set-up: structured JSON (request_id, stage, tenant, duration_ms, error_code) or console."""

from __future__ import annotations

import functools
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

__all__ = ["JsonFormatter", "access_log", "configure_logging", "request_id_of"]

_FIELDS = ("request_id", "stage", "tenant", "duration_ms", "error_code")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            if getattr(record, name, None) is not None:
                out[name] = getattr(record, name)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries log at WARNING, or at INFO when we debug (their DEBUG floods the log).
    libraries = logging.INFO if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for noisy in ("aiokafka", "faust", "mode", "httpx", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(libraries)


def request_id_of(headers: Any) -> str:
    """The caller's ``X-Request-ID`` (kept short and printable), or a new one."""
    given = str(headers.get("X-Request-ID", "")).strip()[:64]
    return given if given.isprintable() and given else uuid.uuid4().hex[:16]


def access_log(
    logger: logging.Logger, level: int = logging.INFO
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Decorate an HTTP view method ``(view, request, tenant=..., ...)``: one line per request at
    ``level`` with request_id, tenant, duration_ms; the request id is echoed in ``X-Request-ID``."""

    def decorate(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(handler)
        async def wrapper(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            request_id = request_id_of(request.headers)
            response = await handler(view, request, *args, **kwargs)
            response.headers["X-Request-ID"] = request_id
            extra = {"request_id": request_id, "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
            if "tenant" in kwargs:
                extra["tenant"] = kwargs["tenant"]
            logger.log(level, "%s %s %d", request.method, request.path, response.status, extra=extra)
            return response

        return wrapper

    return decorate
