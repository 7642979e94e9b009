"""Generated docs stay current. Regenerate: UPDATE_DOCS=1 python -m pytest tests/test_docs.py"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from rag.cli import build_parser
from rag.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def render_cli() -> str:
    parser = build_parser()
    parts = [
        "# `rag` command line\n",
        "Generated from `rag --help`; the contract is `shared/design/INTERFACES.md`.\n",
        "```\n" + _help(parser) + "```\n",
    ]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        parts.append(f"## rag {name}\n\n```\n{_help(command)}```\n")
    return "\n".join(parts)


def _help(parser: argparse.ArgumentParser) -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width: fix it so the text is stable
    return parser.format_help()


def render_settings() -> str:
    rows = ["| setting (`rag.toml`) | environment | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        env = {"openai_base_url": "OPENAI_BASE_URL", "openai_api_key": "OPENAI_API_KEY"}.get(
            name, f"RAG_{name.upper()}"
        )
        default = "" if field.default is None else f"`{field.default}`"
        rows.append(f"| `{name}` | `{env}` | {default} | {field.description} |")
    return (
        "# Settings\n\nGenerated from `rag/settings.py`. Precedence: defaults ← `rag.toml` (or `$RAG_CONFIG`) ← "
        "environment ← command-line flags. `rag config` prints the effective values, secrets masked.\n\n"
        + "\n".join(rows)
        + "\n"
    )


@pytest.mark.parametrize(("name", "render"), [("cli.md", render_cli), ("settings.md", render_settings)])
def test_generated_docs_are_current(name: str, render: object) -> None:
    text = render()  # type: ignore[operator]
    path = DOCS / name
    if os.environ.get("UPDATE_DOCS"):
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"docs/{name} is stale: UPDATE_DOCS=1 python -m pytest {__file__}"


def test_every_setting_has_a_description() -> None:
    assert all(field.description for field in Settings.model_fields.values())
