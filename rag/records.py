"""Documents given directly by a client (the HTTP `/upsert` and `/upsert-file`, or `Index.upsert_texts`) and the
retrieval plugin's view of stored chunks.

The retrieval plugin (openai/chatgpt-retrieval-plugin) describes a document by `id`, `text` and metadata
`{source: "file"|"email"|"chat", source_id, url, created_at, author}`. Such documents take the normal
chunk → embed → store path; their plugin metadata rides along on every chunk under these keys:

    origin       "api" (documents from `rag ingest` have none)
    source_type  the plugin's `source` enum
    source_id, url, author
    created_at   seconds since the epoch (a number, so date ranges are Chroma `$gte`/`$lte` filters)
    created_at_text  the date as the client wrote it, returned unchanged

Our own `source` key (what citations show) is the URL, else the source_id, else the document id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from rag.documents import Document, Section, document_id_for
from rag.errors import ConfigError
from rag.filters import to_timestamp

SOURCES = ("file", "email", "chat")
PLUGIN_FIELDS = ("source", "source_id", "url", "created_at", "author")


def parse_date(value: str, field: str = "created_at") -> float:
    """Any ISO 8601 date or date-time (or epoch seconds) → epoch seconds; a date without a zone is taken as UTC."""
    try:
        return to_timestamp(value)
    except ConfigError as exc:
        raise ConfigError(
            f"{field} must be an ISO 8601 date such as 2024-05-01 or 2024-05-01T12:30:00Z, got {value!r}."
        ) from exc


def _extra(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Plugin metadata → the chunk metadata keys above (None values dropped: Chroma stores no nulls)."""
    meta = {k: v for k, v in (metadata or {}).items() if k in PLUGIN_FIELDS and v is not None}
    source = meta.get("source")
    if source is not None and source not in SOURCES:
        raise ConfigError(f"metadata.source must be one of {', '.join(SOURCES)}, got {source!r}.")
    extra: dict[str, Any] = {"origin": "api"}
    if source:
        extra["source_type"] = source
    for key in ("source_id", "url", "author"):
        if meta.get(key):
            extra[key] = str(meta[key])
    if meta.get("created_at"):
        extra["created_at"] = parse_date(str(meta["created_at"]))
        extra["created_at_text"] = str(meta["created_at"])
    return extra


def _hash(text: str, extra: dict[str, Any]) -> str:
    """Content hash over text and metadata, so a re-upsert with new metadata is not skipped as unchanged."""
    return hashlib.sha256((text + "\0" + json.dumps(extra, sort_keys=True)).encode("utf-8")).hexdigest()


def text_document(item: dict[str, Any]) -> Document:
    """`{"id"?, "text", "metadata"?}` → a Document; a missing id gets a fresh one, as in the plugin."""
    text = item.get("text")
    if not isinstance(text, str):
        raise ConfigError("Every document needs a 'text' string.")
    document_id = str(item.get("id") or uuid.uuid4().hex)
    extra = _extra(item.get("metadata"))
    return Document(
        source=str(extra.get("url") or extra.get("source_id") or document_id),
        sections=[Section(text)] if text.strip() else [],
        mime="text/plain",
        sha256=_hash(text, extra),
        document_id=document_id,
        extra=extra,
    )


def uploaded_document(doc: Document, filename: str, metadata: dict[str, Any] | None) -> Document:
    """A document read from an uploaded file, re-labelled with the client's metadata.

    `source` defaults to "file" and `source_id` to the file name, so uploading a file of the same name again
    replaces it (as ingesting a changed file does).
    """
    meta = {"source": "file", "source_id": filename, **{k: v for k, v in (metadata or {}).items() if v is not None}}
    extra = _extra(meta)
    source = str(extra.get("url") or extra.get("source_id"))
    return Document(
        source=source,
        sections=doc.sections,
        title=doc.title,
        mime=doc.mime,
        sha256=_hash(doc.sha256, extra),
        size=doc.size,
        document_id=document_id_for(f"upload:{source}"),
        extra=extra,
    )


def plugin_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Stored chunk metadata → the plugin's `DocumentChunkMetadata` (plus our page/title/heading), no nulls.

    Chunks from `rag ingest` answer as `source: "file"` with their path or URL as `source_id` (and `url`).
    """
    api = meta.get("origin") == "api"
    out: dict[str, Any] = {"document_id": meta.get("document_id")}
    source = str(meta.get("source", ""))
    out["source"] = meta.get("source_type") if api else "file"
    out["source_id"] = meta.get("source_id") if api else source
    out["url"] = meta.get("url") if api else (source if source.startswith(("http://", "https://")) else None)
    if meta.get("created_at_text"):
        out["created_at"] = meta["created_at_text"]
    elif meta.get("mtime") is not None:
        out["created_at"] = datetime.fromtimestamp(float(meta["mtime"]), tz=UTC).isoformat()
    out["author"] = meta.get("author")
    for key in ("title", "page", "heading"):
        out[key] = meta.get(key) or None
    return {k: v for k, v in out.items() if v is not None}


def plugin_where(flt: dict[str, Any] | None) -> dict[str, Any] | None:
    """The plugin's `DocumentMetadataFilter` → a `rag.filters` where clause (every field must match).

    Dates compare with the document's `created_at`, or for ingested files their modification time.
    """
    clauses: list[dict[str, Any]] = []
    for key, value in (flt or {}).items():
        if value is None or value == "":
            continue
        if key in ("document_id", "author"):
            clauses.append({key: value})
        elif key == "source":
            if value not in SOURCES:
                raise ConfigError(f"filter.source must be one of {', '.join(SOURCES)}, got {value!r}.")
            clause: dict[str, Any] = {"source_type": value}
            if value == "file":  # ingested files carry no source_type: they are files
                clause = {"$or": [clause, {"origin": {"$ne": "api"}}]}
            clauses.append(clause)
        elif key == "source_id":
            clauses.append({"$or": [{"source_id": value}, {"$and": [{"source": value}, {"origin": {"$ne": "api"}}]}]})
        elif key in ("start_date", "end_date"):
            op = "$gte" if key == "start_date" else "$lte"
            t = parse_date(str(value), f"filter.{key}")
            if key == "end_date" and len(str(value).strip()) == 10:  # a bare date ends at the end of that day
                t += 86400 - 0.001
            clauses.append({"$or": [{"created_at": {op: t}}, {"mtime": {op: t}}]})
        else:
            raise ConfigError(
                f"Unknown filter field {key!r}: use document_id, source, source_id, author, start_date, end_date."
            )
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
