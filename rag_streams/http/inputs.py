"""The document endpoints' input rules (``PUT``/``DELETE /v1/tenants/{t}/documents/{doc_id}``),
apart from the views so they can be checked without a Faust app. Each raises BadInput (400)."""

from __future__ import annotations

import re
from typing import Any

from rag_streams.errors import BadInput
from rag_streams.rules.records import MAX_VERSION, check_version

__all__ = ["query_version", "upsert_fields"]


def _version(value: Any) -> int | None:
    """A JSON body's ``version``: absent/null (a monotonic clock is used) or an integer in
    0..2^63-1; strings ("12", "00012"), floats and booleans are refused."""
    return None if value is None else check_version(value)


def query_version(value: str | None) -> int | None:
    """``?version=N``: plain ASCII decimal digits, no sign, no leading zero, at most 2^63-1."""
    if value is None:
        return None
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", value, re.ASCII) or int(value) > MAX_VERSION:
        raise BadInput("'version' must be an integer from 0 to 2^63-1 (decimal digits, no leading zero)")
    return int(value)


def upsert_fields(body: Any) -> tuple[str, int | None, dict[str, str]]:
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    text, metadata = body.get("text"), body.get("metadata")
    if not isinstance(text, str):
        raise BadInput("'text' must be a string")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadInput("'metadata' must be an object of strings")
    return text, _version(body.get("version")), metadata
