"""Errors, classified once: transient ones are retried with backoff, permanent ones dead-lettered."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["BadInput", "PermanentError", "RagError", "TransientError", "is_transient", "retry_transient"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class RagError(Exception):
    """Base of rag-streams' own errors. ``code`` is a stable machine-readable name."""

    code = "error"


class CliError(RagError):
    """A user-facing command failure: the CLI prints it as one line."""

    code = "cli"


class PermanentError(RagError):
    """Retrying cannot help: the message goes to the dead-letter topic."""

    code = "permanent"


class BadInput(PermanentError):
    """The message itself is malformed (schema, fields, size, encoding)."""

    code = "bad_input"


class TransientError(RagError):
    """A dependency is unavailable or slow: retry with backoff."""

    code = "transient"


def is_transient(exc: BaseException) -> bool:
    """The single place that decides transient (retry) versus permanent (dead letter)."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, PermanentError):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    if type(exc).__name__ in {"AioRpcError", "_InactiveRpcError"}:  # qdrant's grpc transport, by name
        return True
    if type(exc).__module__.startswith("aiokafka") and getattr(exc, "retriable", False):
        return True  # what the Kafka protocol itself calls retriable (no coordinator yet, a leader moving)
    if not type(exc).__module__.startswith("qdrant_client"):  # not imported for the Edge store's errors
        return False
    # qdrant-client: transport failures and 5xx / 429 answers are transient.
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, ResponseHandlingException):
        return True
    if isinstance(exc, UnexpectedResponse):
        status = exc.status_code or 0
        return status >= 500 or status == 429
    return False


async def retry_transient(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    what: str,
    attempts: int | None = 8,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    **kwargs: Any,
) -> T:
    """Await ``fn(*args, **kwargs)``; on a transient error retry with exponential backoff and jitter.

    ``attempts=None`` retries for as long as the error stays transient (backpressure).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc) or (attempts is not None and attempt >= attempts):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning(
                "%s failed (%s: %s), retry %d/%s in %.2fs",
                what,
                type(exc).__name__,
                exc,
                attempt,
                attempts or "inf",
                delay,
            )
            await asyncio.sleep(delay)
