"""Parsing and checking the ``RAG_*`` values of :class:`rag_streams.settings.Settings` (which
declares and documents every variable): conversion from text, ``.env`` files, and the range and
choice checks that make a bad value stop the process at start with its variable's name."""

from __future__ import annotations

import math
import re
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag_streams.settings import Settings, SettingsError

__all__ = ["convert", "read_dotenv", "validate"]

TENANT_RE = re.compile(r"[a-z0-9_-]{1,64}")
_CHOICES = {
    "processing_guarantee": {"exactly_once", "at_least_once"},
    "log_format": {"json", "console"},
    "log_level": {"debug", "info", "warning", "error"},
    "table_store": {"rocksdict://", "rocksdb://", "memory://"},
    "avro_fingerprint": {"standard", "legacy"},
    "quantization": {"none", "int8"},
}
_POSITIVE = {
    "edge_index_threshold",
    "topic_partitions",
    "topic_replication",
    "raw_retention_ms",
    "embed_batch",
    "embed_batches_per_take",
    "bulk_embed_batch",
    "chunk_tokens",
    "max_doc_bytes",
    "upsert_rate",
    "tenant_upsert_rate",
    "reindex_upsert_rate",
    "cache_ttl",
    "embed_window_s",
    "commit_interval_s",
    "search_timeout_s",
    "min_version_wait_s",
    "breaker_failures",
    "breaker_reset_s",
    "canary_timeout_s",
}


def _fail(attr: str, msg: str) -> SettingsError:
    from rag_streams.settings import Settings, SettingsError

    env = next(f.metadata["env"] for f in fields(Settings) if f.name == attr)
    return SettingsError(f"{env}: {msg}")


def validate(s: Settings) -> None:
    """Every value in range, every choice known: the message names the ``RAG_*`` variable."""
    for attr, allowed in _CHOICES.items():
        if getattr(s, attr) not in allowed:
            raise _fail(attr, f"must be one of {', '.join(sorted(allowed))}, got {getattr(s, attr)!r}")
    for attr in _POSITIVE:
        if getattr(s, attr) <= 0:
            raise _fail(attr, f"must be > 0, got {getattr(s, attr)!r}")
    if not 0 <= s.chunk_overlap < s.chunk_tokens:
        raise _fail("chunk_overlap", f"must be >= 0 and < RAG_CHUNK_TOKENS ({s.chunk_tokens}), got {s.chunk_overlap}")
    if s.group_instance_id is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", s.group_instance_id):
        raise _fail("group_instance_id", f"expected 1-200 of A-Z a-z 0-9 . _ -, got {s.group_instance_id!r}")
    if not 6 <= s.session_timeout_s <= 1800:
        raise _fail("session_timeout_s", f"must be within the broker's 6..1800 seconds, got {s.session_timeout_s}")
    if not 0 <= s.lag_interval_s < math.inf:  # also refuses nan
        raise _fail("lag_interval_s", f"must be a finite number >= 0 (0 = off), got {s.lag_interval_s!r}")
    if not 0 <= s.health_interval_s < math.inf:
        raise _fail("health_interval_s", f"must be a finite number >= 0 (0 = off), got {s.health_interval_s!r}")
    if s.bulk_min_chunks < 0:
        raise _fail("bulk_min_chunks", f"must be >= 0 (0 = off), got {s.bulk_min_chunks}")
    if s.fallback_chunks < 0:
        raise _fail("fallback_chunks", f"must be >= 0 (0 = off), got {s.fallback_chunks}")
    if not 0 <= s.canary_interval_s < math.inf:
        raise _fail("canary_interval_s", f"must be a finite number >= 0 (0 = off), got {s.canary_interval_s!r}")
    if not TENANT_RE.fullmatch(s.canary_tenant):
        raise _fail("canary_tenant", f"must match {TENANT_RE.pattern}, got {s.canary_tenant!r}")
    if s.window_timezone != "local":
        from rag_streams.commands.pacing import window_zone

        try:
            window_zone(s.window_timezone)
        except ValueError as exc:
            raise _fail("window_timezone", str(exc)) from None
    if s.reindex_grace_s < 0:
        raise _fail("reindex_grace_s", f"must be >= 0, got {s.reindex_grace_s}")
    if not 1 <= s.web_port <= 65535:
        raise _fail("web_port", f"must be a port number, got {s.web_port}")
    if s.vector_store is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", s.vector_store):
        raise _fail("vector_store", f"expected module:callable, got {s.vector_store!r}")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", s.topic_prefix):
        raise _fail("topic_prefix", f"must be letters, digits, '.', '_' or '-', got {s.topic_prefix!r}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", s.collection_prefix):
        raise _fail("collection_prefix", f"must be letters, digits, '_' or '-', got {s.collection_prefix!r}")
    for server in s.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise _fail("kafka_bootstrap", f"expected host:port[,host:port], got {s.kafka_bootstrap!r}")
    if s.qdrant_url is not None and not s.qdrant_url.startswith(("http://", "https://")):
        raise _fail("qdrant_url", f"must start with http:// or https://, got {s.qdrant_url!r}")
    if s.schema_registry_url is not None and not s.schema_registry_url.startswith(("http://", "https://")):
        raise _fail("schema_registry_url", f"must start with http:// or https://, got {s.schema_registry_url!r}")


def convert(attr: str, typ: Any, raw: str) -> Any:
    """A variable's text as its field's type (int, float, bool, Path, str or None)."""
    text = raw.strip()
    kind = str(typ)
    try:
        if kind in ("int",):
            return int(text)
        if kind in ("float",):
            return float(text)
        if kind in ("bool",):
            return _BOOLS[text.lower()]
        if "Path" in kind:
            return Path(text).expanduser() if text else None
        return text if text or kind == "str" else None
    except KeyError:
        raise _fail(attr, f"must be true or false, got {raw!r}") from None
    except ValueError:
        expected = "an integer" if kind == "int" else "a number"
        raise _fail(attr, f"must be {expected}, got {raw!r}") from None


_BOOLS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (``export`` and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values
