"""The page's three panels as component layouts; `ui.app` wires their events. Elements the browser test and the
page script address carry `rag-*` ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.chat import ANY, MODES
from ui.render import EMPTY_SOURCES
from ui.views import DOC_COLUMNS, NO_JOB


@dataclass(slots=True)
class ChatPanel:
    chatbot: Any
    box: Any
    send: Any
    stop: Any
    clear: Any
    sources: Any
    files: Any
    top_k: Any
    mode: Any
    source: Any
    mime: Any
    use_llm: Any
    since: Any


@dataclass(slots=True)
class DocumentsPanel:
    files: Any
    folder: Any
    url: Any
    add_url: Any
    progress: Any
    collection: Any
    new_name: Any
    create: Any
    delete: Any
    confirm_row: Any
    confirm_text: Any
    confirm_delete: Any
    cancel_delete: Any
    table: Any
    remove_pick: Any
    remove: Any


@dataclass(slots=True)
class MapPanel:
    draw: Any
    caption: Any
    plot: Any
    colour_by: Any


def chat_panel(examples: Sequence[str], top_k: int = 5, mode: str = "hybrid", llm: bool = True) -> ChatPanel:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            chatbot = gr.Chatbot(
                label="Chat",
                elem_id="rag-chat",
                height=480,
                feedback_options=None,
                buttons=["copy"],
                placeholder="Ask a question about the indexed documents.",
            )
            with gr.Row():
                box = gr.Textbox(
                    show_label=False,
                    placeholder="Your question…",
                    elem_id="rag-question",
                    scale=5,
                    min_width=200,
                    autofocus=True,
                    container=False,
                    submit_btn=False,
                )
                send = gr.Button("Send", variant="primary", elem_id="rag-send", scale=1, min_width=70)
                stop = gr.Button("Stop", variant="stop", elem_id="rag-stop", scale=1, min_width=70)
            clear = gr.Button("Clear chat", elem_id="rag-clear", size="sm")
            if examples:
                gr.Examples(examples=[[q] for q in examples], inputs=[box], label="Try")
            with gr.Accordion("Settings", open=False, elem_id="rag-settings"):
                with gr.Row():
                    k = gr.Slider(1, 20, value=top_k, step=1, label="Chunks to retrieve (top-k)", elem_id="rag-top-k")
                    how = gr.Radio(list(MODES), value=mode, label="Retrieval", elem_id="rag-mode")
                with gr.Row():
                    source = gr.Dropdown([ANY], value=ANY, label="Only this document", elem_id="rag-filter-source")
                    mime = gr.Dropdown([ANY], value=ANY, label="Only this type", elem_id="rag-filter-type")
                    since = gr.Textbox(
                        label="Modified since", placeholder="YYYY-MM-DD", elem_id="rag-filter-since", max_lines=1
                    )
                use_llm = gr.Checkbox(
                    value=llm,
                    interactive=llm,
                    label="Answer with the LLM (off: quote the best sentences; always off when no LLM is configured)",
                    elem_id="rag-use-llm",
                )
        with gr.Column(scale=2, min_width=300):
            sources = gr.HTML(EMPTY_SOURCES, elem_id="rag-sources")
            files = gr.File(
                label="Cited documents", file_count="multiple", interactive=False, elem_id="rag-cited-files"
            )
    return ChatPanel(chatbot, box, send, stop, clear, sources, files, k, how, source, mime, use_llm, since)


def documents_panel() -> DocumentsPanel:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            files = gr.File(label="Drop files", file_count="multiple", elem_id="rag-upload", height=140)
            folder = gr.File(label="…or a folder", file_count="directory", elem_id="rag-upload-folder", height=110)
            with gr.Row():
                url = gr.Textbox(
                    show_label=False, placeholder="https://… a page to index", elem_id="rag-url", scale=4, min_width=180
                )
                add_url = gr.Button("Add URL", elem_id="rag-add-url", scale=1, min_width=90)
        with gr.Column(scale=1, min_width=300):
            progress = gr.HTML(NO_JOB, elem_id="rag-progress")
    gr.Markdown("### Collections")
    with gr.Row(equal_height=True):
        collection = gr.Dropdown([], label="Current collection", elem_id="rag-collection", scale=2, min_width=180)
        new_name = gr.Textbox(label="New collection", placeholder="name", elem_id="rag-new-collection", scale=2)
        create = gr.Button("Create", elem_id="rag-create", scale=1, min_width=80)
        delete = gr.Button("Delete…", variant="stop", elem_id="rag-delete", scale=1, min_width=80)
    with gr.Row(visible=False, elem_id="rag-confirm") as confirm_row:
        confirm_text = gr.Markdown()
        confirm_delete = gr.Button("Yes, delete it", variant="stop", elem_id="rag-confirm-delete")
        cancel_delete = gr.Button("Cancel", elem_id="rag-cancel-delete")
    table = gr.Dataframe(
        headers=DOC_COLUMNS,
        value=[],
        interactive=False,
        label="Documents in this collection",
        elem_id="rag-docs",
        wrap=True,
        max_height=360,
    )
    with gr.Row(equal_height=True):
        remove_pick = gr.Dropdown([], label="Remove a document from the index", elem_id="rag-remove-pick", scale=4)
        remove = gr.Button("Remove", elem_id="rag-remove", scale=1, min_width=80)
    return DocumentsPanel(
        files, folder, url, add_url, progress, collection, new_name, create, delete, confirm_row, confirm_text,
        confirm_delete, cancel_delete, table, remove_pick, remove,
    )  # fmt: skip


def map_panel() -> MapPanel:
    with gr.Row():
        draw = gr.Button("Redraw the map", elem_id="rag-map-draw", size="sm")
        colour_by = gr.Radio(
            ["document", "topic cluster"], value="document", label="Colour by", elem_id="rag-map-colour", scale=2
        )
    caption = gr.Markdown(elem_id="rag-map-caption")
    plot = gr.ScatterPlot(
        x="x",
        y="y",
        color="group",
        tooltip=["document", "where", "text"],
        x_title="component 1",
        y_title="component 2",
        color_title="document",
        height=520,
        label="Embedding map",
        elem_id="rag-map",
    )
    return MapPanel(draw, caption, plot, colour_by)
