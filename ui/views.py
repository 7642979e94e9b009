"""Pure formatting of the upload progress, the document list and the embedding map. No gradio here.

As in `ui.render`, everything that comes from a file or a document is escaped before it reaches the page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ui.render import file_name

if TYPE_CHECKING:
    import pandas as pd

    from rag import EmbeddingMap
    from ui.workspace import JobSnapshot

STATUS_LABEL = {
    "added": "indexed",
    "updated": "re-indexed (changed)",
    "unchanged": "unchanged",
    "failed": "failed",
    "skipped": "skipped",
}
NO_JOB = (
    '<div class="rag-progress"><p class="rag-muted">Drop files or a folder, or paste a URL, to index them.</p></div>'
)
QUESTION = "(your question)"
RETRIEVED = "(retrieved for it)"
# Tableau-10 without red (kept for the question) and gold (kept for the retrieved chunks).
PALETTE = ["#4e79a7", "#f28e2b", "#76b7b2", "#59a14f", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#17becf"]
DOC_COLUMNS = ["Document", "Chunks", "Type", "Modified", "Path"]


def progress_html(snap: JobSnapshot | None) -> str:
    """The progress bar (files and chunks) and one line per source with its outcome and, on failure, why."""
    if snap is None:
        return NO_JOB
    if snap.error:
        head = f"<b>Upload failed:</b> {html.escape(snap.error)}"
    elif snap.running:
        files = f"{snap.done}/{snap.total} files" if snap.total else "reading the upload…"
        head = f"Indexing into <b>{html.escape(snap.collection)}</b>: {files} · {snap.chunks} chunks · {snap.seconds} s"
    else:
        failed = sum(1 for _, s, _ in snap.results if s in ("failed", "skipped"))
        ok = len(snap.results) - failed
        head = (
            f"Done in {snap.seconds} s: {ok} file{'s' if ok != 1 else ''} ready, {snap.chunks} new chunks"
            + (f", <b>{failed} not indexed</b>" if failed else "")
            + ". New documents are searchable now."
        )
    pct = 100 if not snap.running else int(100 * snap.done / snap.total) if snap.total else 0
    rows = []
    for source, status, detail in snap.results:
        label = STATUS_LABEL.get(status, status)
        why = f' <span class="rag-why">— {html.escape(detail)}</span>' if detail else ""
        rows.append(
            f'<li class="rag-result rag-{html.escape(status)}"><span class="rag-badge">{html.escape(label)}</span> '
            f'<span title="{html.escape(source, quote=True)}">{html.escape(file_name(source))}</span>{why}</li>'
        )
    return (
        f'<div class="rag-progress" data-running="{str(snap.running).lower()}"><div>{head}</div>'
        f'<div class="rag-bar" role="progressbar" aria-valuenow="{pct}" aria-valuemin="0" aria-valuemax="100">'
        f'<div style="width:{pct}%"></div></div>'
        f'<ul class="rag-results">{"".join(rows)}</ul></div>'
    )


def documents_table(docs: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Rows of the document list: name, chunks, type, modified (UTC date), full path or URL."""
    rows = []
    for d in docs:
        mtime = d.get("mtime")
        when = datetime.fromtimestamp(float(mtime), UTC).strftime("%Y-%m-%d") if mtime else ""
        rows.append([file_name(d["source"]), int(d["chunks"]), d.get("mime") or "", when, d["source"]])
    return rows


def document_choices(docs: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, document_id) for the "remove a document" picker; the label says which file and how big."""
    return [(f"{file_name(d['source'])} · {d['chunks']} chunks · {d['source']}", d["document_id"]) for d in docs]


def map_frame(emap: EmbeddingMap, clusters: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The map as rows for a scatter plot: one per chunk, coloured by document (or by the topic cluster named in
    `clusters`, document_id → label); the retrieved chunks and the question get categories of their own."""
    import pandas as pd

    retrieved = set(emap.highlight)

    def group(p: Any) -> str:
        if p.id in retrieved:
            return RETRIEVED
        if clusters is not None:
            return clusters.get(p.document_id, "unclustered")
        return file_name(p.source)

    rows = [
        {
            "x": p.x,
            "y": p.y,
            "group": group(p),
            "document": file_name(p.source),
            "where": f"page {p.page}" if p.page is not None else (p.heading or ""),
            "text": p.text[:160],
        }
        for p in emap.points
    ]
    if emap.query is not None:
        question = (emap.question or "")[:160]
        rows.append(
            {"x": emap.query[0], "y": emap.query[1], "group": QUESTION, "document": "", "where": "", "text": question}
        )
    return pd.DataFrame(rows, columns=["x", "y", "group", "document", "where", "text"])


def cluster_labels(clustering: Any) -> dict[str, str]:
    """document_id → "topic n: its distinctive terms", from `Index.clusters()`."""
    return {d["document_id"]: f"topic {c.id + 1}: {c.label}" for c in clustering.clusters for d in c.documents}


def map_colors(frame: pd.DataFrame) -> dict[str, str]:
    """One colour per document or cluster (cycling), red for the question, gold for the retrieved chunks."""
    docs = [g for g in dict.fromkeys(frame["group"]) if g not in (QUESTION, RETRIEVED)]
    colors = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(docs)}
    return {**colors, RETRIEVED: "#edc948", QUESTION: "#e15759"}


def map_caption(emap: EmbeddingMap) -> str:
    """What the map shows and how faithful the flattening is."""
    if not emap.points:
        return "The collection is empty: index some documents to see their map."
    docs = len({p.document_id for p in emap.points})
    kept = sum(emap.explained) * 100
    sample = f" (an even sample of {emap.total})" if emap.total > len(emap.points) else ""
    parts = [
        f"{len(emap.points)} chunks{sample} of {docs} document{'s' if docs != 1 else ''}, projected to 2-D by PCA "
        f"(the two axes keep {kept:.0f}% of the variance). Nearby points have similar meaning; hover for the text."
    ]
    if emap.question:
        parts.append("Red: your last question; gold: the chunks retrieved for it.")
    return " ".join(parts)
