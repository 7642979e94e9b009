"""The retrieval plugin's published response schemas (openai/chatgpt-retrieval-plugin, `.well-known/openapi.yaml`
and `models/api.py`), written out as JSON Schema so tests can validate our responses the way a strict client of
the plugin would: no field may be null (the schema declares none nullable), the types must match, required
fields must be there. Extra fields are allowed, as in the schema.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from referencing import Registry, Resource

_STR = {"type": "string"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Source": {"type": "string", "enum": ["email", "file", "chat"]},
    "DocumentMetadata": {
        "type": "object",
        "properties": {
            "source": {"$ref": "#/components/schemas/Source"},
            "source_id": _STR,
            "url": _STR,
            "created_at": _STR,
            "author": _STR,
        },
    },
    "DocumentChunkMetadata": {
        "type": "object",
        "properties": {
            "source": {"$ref": "#/components/schemas/Source"},
            "source_id": _STR,
            "url": _STR,
            "created_at": _STR,
            "author": _STR,
            "document_id": _STR,
        },
    },
    "DocumentChunkWithScore": {
        "type": "object",
        "required": ["text", "metadata", "score"],
        "properties": {
            "id": _STR,
            "text": _STR,
            "metadata": {"$ref": "#/components/schemas/DocumentChunkMetadata"},
            "embedding": {"type": "array", "items": {"type": "number"}},
            "score": {"type": "number"},
        },
    },
    "DocumentMetadataFilter": {
        "type": "object",
        "properties": {
            "document_id": _STR,
            "source": {"$ref": "#/components/schemas/Source"},
            "source_id": _STR,
            "author": _STR,
            "start_date": _STR,
            "end_date": _STR,
        },
    },
    "Query": {
        "type": "object",
        "required": ["query"],
        "properties": {
            "query": _STR,
            "filter": {"$ref": "#/components/schemas/DocumentMetadataFilter"},
            "top_k": {"type": "integer", "default": 3},
        },
    },
    "QueryResult": {
        "type": "object",
        "required": ["query", "results"],
        "properties": {
            "query": _STR,
            "results": {"type": "array", "items": {"$ref": "#/components/schemas/DocumentChunkWithScore"}},
        },
    },
    "QueryResponse": {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/QueryResult"}}},
    },
    "UpsertResponse": {
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": _STR}},
    },
    "DeleteResponse": {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"type": "boolean"}},
    },
}

_DOC = {"components": {"schemas": SCHEMAS}}
_REGISTRY = Registry().with_resource("plugin", Resource.opaque(_DOC))


def validate(name: str, instance: Any) -> None:
    """Raise jsonschema.ValidationError unless `instance` is a valid `name` of the plugin's schema."""
    schema = {"$ref": f"plugin#/components/schemas/{name}"}
    jsonschema.Draft202012Validator(schema, registry=_REGISTRY).validate(instance)
