"""Markdown: one section per heading, keeping the Markdown text itself (it reads well and chunks well).

Only what decides structure is parsed: ATX (`## Title`) and setext (`Title` over `===`/`---`) headings, fenced code
blocks (a `# comment` inside a fence is not a heading) and YAML front matter (its `---` is not a setext underline).
"""

from __future__ import annotations

import re
from pathlib import Path

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.formats.text import decode_or_fail
from rag.documents import Section

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# Lines that cannot be the text of a setext heading: list items, quotes, table rows.
_NOT_PARAGRAPH = re.compile(r"^ {0,3}([-*+>|]|\d+[.)])(\s|$)")
_FRONT_MATTER_TITLE = re.compile(r"^title:\s*['\"]?(.*?)['\"]?\s*$", re.IGNORECASE)


@register(".md", ".markdown", mimes=("text/markdown", "text/x-markdown"))
def load_markdown(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    sections, title = parse_markdown(decode_or_fail(path, data))
    return sections, title or path.stem, "text/markdown"


def parse_markdown(text: str) -> tuple[list[Section], str]:
    """Split Markdown into heading sections; returns (sections, first H1 or front-matter title or "")."""
    lines = text.split("\n")
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []  # the open headings, outermost first
    heading_lines: list[str] = []  # the heading as written, kept at the top of its section
    body: list[str] = []
    h1 = ""
    fm_title = ""
    fence: str | None = None  # the opening fence ("```" or "~~~~") while inside a code block
    prev_is_paragraph = False

    def flush() -> None:
        if any(line.strip() for line in body):
            heading = " > ".join(t for _, t in stack if t) or None
            sections.append(Section("\n".join(heading_lines + body).strip(), heading=heading))

    def open_heading(level: int, title: str, written: list[str]) -> None:
        nonlocal heading_lines, body, h1
        flush()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        heading_lines, body = written, []
        if level == 1 and not h1:
            h1 = title

    start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            for line in lines[1:end]:
                if m := _FRONT_MATTER_TITLE.match(line):
                    fm_title = m.group(1)
            body = lines[: end + 1]
            start = end + 1

    for line in lines[start:]:
        if fence is not None:
            body.append(line)
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            continue
        if m := _FENCE.match(line):
            if not (m.group(1)[0] == "`" and "`" in m.group(2)):  # a backtick info string can't hold backticks
                fence = m.group(1)
                body.append(line)
                prev_is_paragraph = False
                continue
        if m := _ATX.match(line):
            open_heading(len(m.group(1)), (m.group(2) or "").strip(), [line])
            prev_is_paragraph = False
            continue
        if prev_is_paragraph and (m := _SETEXT.match(line)):
            title_line = body.pop()
            open_heading(1 if m.group(1)[0] == "=" else 2, title_line.strip(), [title_line, line])
            prev_is_paragraph = False
            continue
        # A setext heading's text is a single paragraph line here: multi-line setext titles are rare.
        prev_is_paragraph = bool(line.strip()) and not _NOT_PARAGRAPH.match(line) and not (body and body[-1].strip())
        body.append(line)
    flush()
    return sections, h1 or fm_title
