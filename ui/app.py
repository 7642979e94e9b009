"""The chat UI: a Gradio page over the public `rag` API (`rag ui` calls `launch`).

The page streams each answer from `Index.ask_stream` into a chatbot and fills a sources panel as soon as the chunks
are retrieved, replacing it with the cited chunks once the answer is complete. History lives in the browser
session's chatbot value; nothing is stored server-side beyond the index itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rag import RagError
from ui.render import (
    EMPTY_SOURCES,
    rows_from_citations,
    rows_from_results,
    sources_html,
    status_markdown,
)

# Before gradio is imported (lazily, below): its analytics would look up outside hosts at launch.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if TYPE_CHECKING:
    import gradio as gr

    from rag import Index

# Two questions the bundled demo corpus (`rag.demo_corpus()`) answers.
DEMO_EXAMPLES = [
    "Who was the first keeper of the lighthouse?",
    "How much is the daily meal allowance for travel within Europe?",
]

# Scoped to the sources panel (gr.HTML's css_template); colours come from the theme so dark mode works.
SOURCES_CSS = """
.rag-sources h3 { margin: 0 0 .5em; font-size: 1rem; }
.rag-source-list { list-style: none; padding: 0; margin: 0; }
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5em .7em;
  margin-bottom: .5em; overflow-wrap: anywhere; }
.rag-file { font-weight: 600; }
.rag-muted, .rag-score { color: var(--body-text-color-subdued); font-size: .9em; }
.rag-score { white-space: nowrap; }
.rag-snippet { margin-top: .3em; font-size: .9em; line-height: 1.4; }
"""

Message = dict[str, Any]


def chat_turn(index: Index, message: str, history: list[Message] | None) -> Iterator[tuple[list[Message], str]]:
    """One question → successive (chat history, sources panel HTML) states, the answer growing delta by delta.

    The first state already has the retrieved chunks in the panel and an empty answer; the last has the cited
    chunks (or, when nothing was cited, the closest passages, said to be uncited).
    """
    history = [*(history or []), {"role": "user", "content": message.strip()}, {"role": "assistant", "content": ""}]
    try:
        stream = index.ask_stream(message.strip())
        # The chunks are known before the first word: show them while the answer is written.
        retrieved = sources_html(rows_from_results(stream.results), "Retrieved")
        yield history, retrieved
        text = ""
        for delta in stream:
            text += delta
            history = [*history[:-1], {"role": "assistant", "content": text}]
            yield history, retrieved
        answer = stream.answer
    except RagError as exc:
        yield [*history[:-1], {"role": "assistant", "content": f"⚠️ {exc}"}], EMPTY_SOURCES
        return
    if answer.warnings:
        notes = "\n".join(f"> ⚠️ {w}" for w in answer.warnings)
        history = [*history[:-1], {"role": "assistant", "content": f"{answer.answer}\n\n{notes}"}]
    if answer.citations:
        panel = sources_html(rows_from_citations(answer.citations, answer.results, answer.answer), "Sources")
    else:
        panel = sources_html(rows_from_results(answer.results), "Closest passages (not cited)")
    yield history, panel


def build_app(index: Index, examples: Sequence[str] | None = None) -> gr.Blocks:
    """The chat page for `index`. `examples` default to the demo questions when the collection is `demo`."""
    import gradio as gr

    if examples is None:
        examples = DEMO_EXAMPLES if index.settings.collection == "demo" else []

    def status_line() -> str:
        status = dict(index.status())
        if "llm" not in status:  # older shape of status(): derive it from the settings
            status["llm"] = index.settings.llm_model if index.settings.llm_configured else None
        return status_markdown(status)

    def respond(message: str, history: list[Message] | None) -> Iterator[tuple[list[Message], str, Any]]:
        if not (message or "").strip():
            yield list(history or []), "", gr.skip()
            return
        for turn, panel in chat_turn(index, message, history):
            yield turn, "", panel

    with gr.Blocks(title="rag-plugin", analytics_enabled=False) as demo:
        gr.Markdown("# rag-plugin\nAsk questions about your documents; every answer cites its sources.")
        status = gr.Markdown(status_line(), elem_id="rag-status")
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
                    send = gr.Button("Send", variant="primary", elem_id="rag-send", scale=1, min_width=80)
                clear = gr.Button("Clear chat", elem_id="rag-clear", size="sm")
                if examples:
                    gr.Examples(examples=[[q] for q in examples], inputs=[box], label="Try")
            with gr.Column(scale=2, min_width=300):
                sources = gr.HTML(EMPTY_SOURCES, elem_id="rag-sources", css_template=SOURCES_CSS)

        outputs = [chatbot, box, sources]
        box.submit(respond, [box, chatbot], outputs)
        send.click(respond, [box, chatbot], outputs)
        clear.click(lambda: ([], "", EMPTY_SOURCES), None, outputs, queue=False)
        chatbot.clear(lambda: EMPTY_SOURCES, None, sources, queue=False)  # the chatbot's own trash button
        demo.load(status_line, None, status)  # counts change as others ingest; refresh on every page load
    return demo


def launch(index: Index, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Serve the chat page until interrupted. Binds loopback by default; a public share link is never made."""
    if share:
        raise ValueError("share links are not supported: they would expose the index through an outside relay")
    demo = build_app(index)
    # quiet: gradio's own banner suggests `share=True`, which this app refuses.
    print(f"rag ui: http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    demo.launch(server_name=host, server_port=port, share=False, show_error=True, quiet=True)
