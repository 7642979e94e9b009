"""The Gradio page over the public `rag` API (`rag ui` calls `launch`): chat, documents, collections, map.

Each browser session keeps its chat history, its current collection and its last turn in its own state; the open
indexes and background uploads are shared server-side (`ui.workspace`). Nothing leaves the machine: analytics are
off, there is no share link, and every asset is served by this process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag import RagError
from ui.chat import ANY, AskOptions, Message, TurnResult, chat_turn
from ui.render import EMPTY_SOURCES, status_markdown
from ui.views import (
    DOC_COLUMNS,
    cluster_labels,
    document_choices,
    documents_table,
    map_caption,
    map_colors,
    map_frame,
    progress_html,
)
from ui.workspace import Workspace

# Before gradio is imported (lazily, below): its analytics would look up outside hosts at launch.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if TYPE_CHECKING:
    import gradio as gr

    from rag import Index

# Re-exported: the chat handler is part of this module's documented surface.
__all__ = ["DEMO_EXAMPLES", "build_app", "chat_turn", "launch", "serve"]

# Two questions the bundled demo corpus (`rag.demo_corpus()`) answers.
DEMO_EXAMPLES = [
    "Who was the first keeper of the lighthouse?",
    "How much is the daily meal allowance for travel within Europe?",
]
ASSETS = Path(__file__).parent / "assets"
POLL_SECONDS = 0.7


def build_app(index: Index, examples: Sequence[str] | None = None) -> gr.Blocks:
    """The page for `index`'s data dir, opening on its collection. Serve it with `serve()` (it adds the CSS/JS)."""
    import gradio as gr

    from ui import panels

    ws = Workspace(index)
    if examples is None:
        examples = DEMO_EXAMPLES if index.settings.collection == "demo" else []

    with gr.Blocks(title="rag-plugin", analytics_enabled=False) as demo:
        collection = gr.State(ws.default)
        last_turn = gr.State(TurnResult())
        gr.Markdown("# rag-plugin\nAsk questions about your documents; every answer cites its sources.")
        status = gr.Markdown(elem_id="rag-status")
        with gr.Tabs(elem_id="rag-tabs"):
            with gr.Tab("Chat", id="chat", elem_id="rag-tab-chat"):
                chat = panels.chat_panel(
                    examples, index.settings.top_k, index.settings.search_mode, index.settings.llm_configured
                )
            with gr.Tab("Documents", id="docs", elem_id="rag-tab-docs"):
                docs = panels.documents_panel()
            with gr.Tab("Map", id="map", elem_id="rag-tab-map") as map_tab:
                emap = panels.map_panel()
        timer = gr.Timer(POLL_SECONDS, active=False)

        # --- chat ------------------------------------------------------------------------------------------
        def respond(
            message: str, history: list[Message] | None, name: str, top_k: float, mode: str, source: str, mime: str,
            use_llm: bool, since: str,
        ) -> Iterator[tuple[Any, ...]]:  # fmt: skip
            if not (message or "").strip():
                yield list(history or []), "", gr.skip(), gr.skip(), gr.skip()
                return
            options = AskOptions(int(top_k), mode, source, mime, use_llm, since or "")
            try:
                idx = ws.index(name)
            except RagError as exc:
                yield (
                    [*(history or []), {"role": "assistant", "content": f"⚠️ {exc}"}],
                    "",
                    EMPTY_SOURCES,
                    None,
                    gr.skip(),
                )
                return
            turn = TurnResult()
            for turn_history, panel, turn in chat_turn(idx, message, history, options):
                yield turn_history, "", panel, gr.skip(), turn
            yield gr.skip(), gr.skip(), gr.skip(), _cited_files(turn.cited_sources), turn

        ask_inputs = [
            chat.box, chat.chatbot, collection, chat.top_k, chat.mode, chat.source, chat.mime, chat.use_llm, chat.since,
        ]  # fmt: skip
        ask_outputs = [chat.chatbot, chat.box, chat.sources, chat.files, last_turn]
        asking = [
            chat.box.submit(respond, ask_inputs, ask_outputs),
            chat.send.click(respond, ask_inputs, ask_outputs),
        ]
        chat.stop.click(None, None, None, cancels=asking, queue=False)
        chat.clear.click(
            lambda: ([], "", EMPTY_SOURCES, None), None, [chat.chatbot, chat.box, chat.sources, chat.files]
        )
        chat.chatbot.clear(lambda: (EMPTY_SOURCES, None), None, [chat.sources, chat.files])

        # --- status, collections and documents ----------------------------------------------------------------
        def refresh(name: str) -> tuple[Any, ...]:
            """Everything that depends on the session's collection: status, pickers, filters, document list."""
            try:
                idx = ws.index(name)
                listed = idx.documents()
                line = status_markdown(ws.status(name))
            except RagError as exc:
                listed, line = [], f"⚠️ {exc}"
            names = list(ws.collections())
            sources = [ANY, *sorted({d["source"] for d in listed})]
            mimes = [ANY, *sorted({d["mime"] for d in listed if d.get("mime")})]
            job = ws.job(name)
            return (
                line,
                gr.Dropdown(choices=names, value=name),
                gr.Dropdown(choices=sources, value=ANY),
                gr.Dropdown(choices=mimes, value=ANY),
                gr.Dataframe(value=documents_table(listed), headers=DOC_COLUMNS),
                gr.Dropdown(choices=document_choices(listed), value=None),
                progress_html(job.snapshot() if job else None),
            )

        view = [status, docs.collection, chat.source, chat.mime, docs.table, docs.remove_pick, docs.progress]
        demo.load(refresh, collection, view)

        def switch(name: str) -> tuple[Any, ...]:
            return (name, [], EMPTY_SOURCES, None, TurnResult(), *refresh(name))

        switch_outputs = [collection, chat.chatbot, chat.sources, chat.files, last_turn, *view]
        docs.collection.input(switch, docs.collection, switch_outputs)

        def create(new_name: str, name: str) -> tuple[Any, ...]:
            new_name = (new_name or "").strip()
            try:
                ws.index(new_name)
            except RagError as exc:
                gr.Warning(str(exc))
                return (name, gr.skip(), gr.skip(), gr.skip(), gr.skip(), *refresh(name), gr.skip())
            return (*switch(new_name), "")

        docs.create.click(create, [docs.new_name, collection], [*switch_outputs, docs.new_name])

        docs.delete.click(
            lambda name: (gr.Row(visible=True), f"Delete collection **{name}** and all its chunks?"),
            collection,
            [docs.confirm_row, docs.confirm_text],
        )
        docs.cancel_delete.click(lambda: gr.Row(visible=False), None, docs.confirm_row)

        def delete(name: str) -> tuple[Any, ...]:
            try:
                ws.delete(name)
            except RagError as exc:
                gr.Warning(str(exc))
                return (gr.Row(visible=False), *switch(name))
            remaining = [n for n in ws.collections() if n != name]
            return (gr.Row(visible=False), *switch(ws.default if ws.default != name else (remaining or [name])[0]))

        docs.confirm_delete.click(delete, collection, [docs.confirm_row, *switch_outputs])

        def remove(document_id: str | None, name: str) -> tuple[Any, ...]:
            if document_id:
                ws.index(name).remove_document(document_id)
            return refresh(name)

        docs.remove.click(remove, [docs.remove_pick, collection], view)

        # --- uploads: copied into the data dir, indexed in a background thread, polled by the timer ------------
        def start(sources: list[Path | str], name: str) -> tuple[Any, ...]:
            if not sources:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            try:
                cost = ws.check_cost(name, sources)  # a paid embedding API: the price first, refused above the limit
                job = ws.start_ingest(name, sources)
            except RagError as exc:
                gr.Warning(str(exc))
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            if cost:
                gr.Info(cost)
            return progress_html(job.snapshot()), gr.Timer(active=True), None, None

        def upload(files: list[str] | None, name: str) -> tuple[Any, ...]:
            return start(ws.store_uploads(name, files or []), name)

        upload_outputs = [docs.progress, timer, docs.files, docs.folder]
        docs.files.upload(upload, [docs.files, collection], upload_outputs)
        docs.folder.upload(upload, [docs.folder, collection], upload_outputs)

        def add_url(url: str, name: str) -> tuple[Any, ...]:
            url = (url or "").strip()
            if not url.startswith(("http://", "https://")):
                gr.Warning("Paste a full address starting with http:// or https://")
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return (*start([url], name), "")

        docs.add_url.click(add_url, [docs.url, collection], [*upload_outputs, docs.url])

        def poll(name: str) -> tuple[Any, ...]:
            job = ws.job(name)
            snap = job.snapshot() if job else None
            if snap is not None and snap.running:  # the counts grow as documents land; the lists follow at the end
                try:
                    line = status_markdown(ws.status(name))
                except RagError:
                    line = gr.skip()
                return (progress_html(snap), gr.skip(), line, *([gr.skip()] * (len(view) - 2)))
            # Finished: stop polling and show the new documents everywhere.
            *rest, panel = refresh(name)
            return (panel, gr.Timer(active=False), *rest)

        timer.tick(poll, collection, [docs.progress, timer, *view[:-1]], show_progress="hidden")

        # --- the embedding map ----------------------------------------------------------------------------------
        def draw(name: str, turn: TurnResult, colour_by: str) -> tuple[Any, str]:
            try:
                index = ws.index(name)
                result = index.embedding_map(turn.question or None, turn.result_ids)
                # Topic clusters (k-means, k by silhouette) are named by their distinctive terms.
                clusters = cluster_labels(index.clusters()) if colour_by == "topic cluster" and result.points else None
            except RagError as exc:
                return gr.skip(), f"⚠️ {exc}"
            frame = map_frame(result, clusters)
            return gr.ScatterPlot(value=frame, color_map=map_colors(frame)), map_caption(result)

        map_inputs = [collection, last_turn, emap.colour_by]
        emap.draw.click(draw, map_inputs, [emap.plot, emap.caption])
        emap.colour_by.change(draw, map_inputs, [emap.plot, emap.caption])
        map_tab.select(draw, map_inputs, [emap.plot, emap.caption])
    return demo


def _cited_files(sources: Sequence[str]) -> list[str] | None:
    """Copies of the cited local files, for download: the page serves only files it made, never a path it was
    told. One copy per file version, so answering again does not pile up copies."""
    out = []
    for source in sources:
        path = Path(source)
        if source.startswith(("http://", "https://")) or not path.is_file():
            continue
        stat = path.stat()
        version = hashlib.sha1(f"{path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}".encode()).hexdigest()[:16]
        dest = Path(tempfile.gettempdir()) / "rag-ui-cited" / version / path.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        out.append(str(dest))
    return out or None


def serve(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> None:
    """Start the server with the page's CSS and script (Gradio 6 takes them at launch)."""
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        show_error=True,
        quiet=True,  # gradio's own banner suggests `share=True`, which this app refuses
        prevent_thread_lock=not block,
        css=(ASSETS / "app.css").read_text(encoding="utf-8"),
        head=f"<script>{(ASSETS / 'app.js').read_text(encoding='utf-8')}</script>",
    )


def launch(index: Index, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Serve the page until interrupted. Binds loopback by default; a public share link is never made."""
    if share:
        raise ValueError("share links are not supported: they would expose the index through an outside relay")
    demo = build_app(index)
    print(f"rag ui: http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    serve(demo, host, port)
