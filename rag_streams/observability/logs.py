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

__all__ = ["JsonFormatter", "RepeatFilter", "access_log", "configure_logging", "request_id_of"]

_FIELDS = ("request_id", "stage", "tenant", "duration_ms", "error_code")
_LIBRARIES = ("aiokafka", "faust", "mode", "httpx", "sentence_transformers", "transformers")


class RepeatFilter(logging.Filter):
    """Lets a library's repeated message through once per ``window_s``, with the count it held back.

    While the broker is down, aiokafka logs the same two connection errors thousands of times a
    second (measured: 870,000 lines, 54 MB, in a 50-second outage); our own records always pass.
    """

    def __init__(
        self,
        window_s: float = 10.0,
        libraries: tuple[str, ...] = _LIBRARIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.libraries = libraries
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (last emitted, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.libraries):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.msg} [{last[1]} more like this in the last {now - last[0]:.0f}s]"
        if len(self._seen) > 10_000:  # messages that embed ever-changing text: forget, do not grow
            self._seen.clear()
        self._seen[key] = (now, 0)
        return True


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
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries log at WARNING, or at INFO when we debug (their DEBUG floods the log).
    libraries = logging.INFO if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for noisy in _LIBRARIES:
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
