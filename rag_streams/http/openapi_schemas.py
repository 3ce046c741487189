"""The component schemas of the OpenAPI document (rag_streams/http/openapi.py): request and answer bodies."""

from __future__ import annotations

from typing import Any

from rag_streams.http.search import MAX_FILTER_DOC_IDS, MAX_K, MAX_MIN_VERSION_DOCS, MAX_QUERY_CHARS
from rag_streams.rules.records import MAX_DOC_ID_CHARS, MAX_VERSION

__all__ = ["SCHEMAS", "VERSION", "ref"]

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
VERSION = {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_VERSION}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "a code from the status: bad_request, not_found, ..."},
            "detail": {"type": "string", "description": "what was wrong, in words"},
        },
    },
    "SearchRequest": {
        "type": "object",
        "required": ["query"],
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 5},
            "filter": {
                "type": "object",
                "nullable": True,
                "additionalProperties": False,
                "description": "see docs/http-api.md; an unknown key is a 400",
                "properties": {
                    "doc_id": {
                        "oneOf": [
                            {"type": "string", "minLength": 1, "maxLength": MAX_DOC_ID_CHARS},
                            {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_FILTER_DOC_IDS,
                                "items": {"type": "string", "minLength": 1, "maxLength": MAX_DOC_ID_CHARS},
                            },
                        ]
                    }
                },
            },
            "min_version": {
                "type": "object",
                "nullable": True,
                "maxProperties": MAX_MIN_VERSION_DOCS,
                "description": "doc_id -> version: wait (bounded by RAG_MIN_VERSION_WAIT_S) until indexed",
                "additionalProperties": {**VERSION, "minimum": 1},
            },
        },
    },
    "SearchResult": {
        "type": "object",
        "required": ["doc_id", "chunk_index", "version", "score", "text", "metadata"],
        "properties": {
            "doc_id": {"type": "string"},
            "chunk_index": {"type": "integer"},
            "version": {"type": "integer"},
            "score": {"type": "number"},
            "text": {"type": "string"},
            "metadata": STRING_MAP,
        },
    },
    "SearchResponse": {
        "type": "object",
        "required": ["results", "cached", "degraded", "source"],
        "properties": {
            "results": {"type": "array", "items": ref("SearchResult")},
            "cached": {"type": "boolean"},
            "degraded": {
                "type": "boolean",
                "description": "the vector store is unavailable: results from the fallback index, or none",
            },
            "source": {
                "type": "string",
                "enum": ["store", "cache", "fallback", "none"],
                "description": "where the results come from: the vector store, the answer cache, the fallback"
                " index of the most-queried chunks (degraded), or nowhere (degraded, no results)",
            },
            "pending": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "min_version documents not indexed when the wait ran out: the newest version seen",
            },
        },
    },
    "DocumentPut": {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "description": "not empty nor whitespace only; at most RAG_MAX_DOC_BYTES"},
            "version": {**VERSION, "nullable": True, "description": "absent: epoch microseconds"},
            "metadata": {**STRING_MAP, "nullable": True},
        },
    },
    "DocumentAccepted": {
        "type": "object",
        "required": ["tenant", "doc_id", "version", "op"],
        "properties": {
            "tenant": {"type": "string"},
            "doc_id": {"type": "string"},
            "version": {"type": "integer"},
            "op": {"type": "string", "enum": ["upsert", "delete"]},
        },
    },
    "Points": {
        "type": "object",
        "required": ["points"],
        "properties": {"points": {"type": "array", "items": {"type": "object"}}},
    },
    "Collection": {
        "type": "object",
        "required": ["name", "generation", "model", "dim", "aliased"],
        "properties": {
            "name": {"type": "string"},
            "generation": {"type": "integer"},
            "model": {"type": "string"},
            "dim": {"type": "integer"},
            "source": {"type": "string", "nullable": True},
            "aliased": {"type": "boolean"},
        },
    },
    "CollectionCreate": {
        "type": "object",
        "required": ["generation", "dim", "model"],
        "properties": {
            "generation": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
            "dim": {"type": "integer", "minimum": 1, "maximum": 65536},
            "model": {"type": "string"},
            "source": {"type": "string", "nullable": True},
        },
    },
    "PointsUpsert": {
        "type": "object",
        "required": ["points", "version"],
        "properties": {
            "points": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["id", "vector", "payload"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "vector": {"type": "array", "items": {"type": "number"}},
                        "payload": {"type": "object"},
                    },
                },
            },
            "version": VERSION,
            "same_version": {"type": "boolean"},
        },
    },
    "DocDelete": {
        "type": "object",
        "required": ["doc_id"],
        "properties": {
            "doc_id": {"type": "string", "minLength": 1},
            "trim_version": {**VERSION, "nullable": True},
            "below_version": {**VERSION, "nullable": True},
            "upto_version": {**VERSION, "nullable": True},
        },
    },
    "AliasFlip": {"type": "object", "required": ["collection"], "properties": {"collection": {"type": "string"}}},
    "TenantStats": {
        "type": "object",
        "required": ["tenant", "points", "expected_points", "documents", "partitions", "complete"],
        "properties": {
            "tenant": {"type": "string"},
            "points": {"type": "integer", "description": "points in the aliased collection"},
            "expected_points": {
                "type": "integer",
                "description": "points the version tables of this worker's partitions expect",
            },
            "mismatch": {
                "type": "integer",
                "nullable": True,
                "description": "points - expected_points; null unless complete",
            },
            "documents": {"type": "integer"},
            "deleted_documents": {"type": "integer"},
            "collection": {"type": "string", "nullable": True},
            "generation": {"type": "integer", "nullable": True},
            "model": {"type": "string", "nullable": True},
            "dim": {"type": "integer", "nullable": True},
            "partitions": {"type": "array", "items": {"type": "integer"}},
            "complete": {"type": "boolean", "description": "this worker holds every partition"},
        },
    },
}
