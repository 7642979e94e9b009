"""HTML: the readable text of the page, one section per heading, with page chrome (nav, scripts, forms) dropped.

A page that declares its charset (`<meta charset>`, XML prolog) goes to BeautifulSoup as bytes, which honours the
declaration and any BOM; an undeclared one is decoded by our own detection, which (unlike bs4's) prefers cp1252 over
cp1250 when the two tie, as they do for most short Western pages.
Blocks become lines so words from adjacent paragraphs or cells are never glued together.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from bs4 import (
    BeautifulSoup,
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    ProcessingInstruction,
    Tag,
    XMLParsedAsHTMLWarning,
)
from bs4.dammit import EncodingDetector

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.formats.text import decode_or_fail
from rag.documents import Section

_DROP = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg", "iframe")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = frozenset(
    "address article blockquote body br caption dd details dialog div dl dt fieldset figcaption figure hr html li "
    "main ol p pre section summary table tbody tfoot thead tr ul".split()
)
_CELLS = frozenset(("td", "th"))
_SPACES = re.compile(r"\s+")


@register(".html", ".htm", ".xhtml", mimes=("text/html", "application/xhtml+xml"))
def load_html(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    with warnings.catch_warnings():
        # XHTML served as .html is fine to read as HTML; the warning would only be noise (and fail strict tests).
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        declared = EncodingDetector.find_declared_encoding(data, is_html=True)
        soup = BeautifulSoup(data if declared else decode_or_fail(path, data), "lxml")
    title = _clean(soup.title.get_text(" ")) if soup.title else ""
    for tag in soup.find_all(_DROP):
        # A page's header and footer are chrome, but an article's <header> holds its own title.
        if tag.name not in ("header", "footer") or tag.find_parent(("article", "main")) is None:
            tag.decompose()
    if not title and (h1 := soup.find("h1")):
        title = _clean(h1.get_text(" "))
    articles = soup.find_all("article")
    root = soup.find("main") or (articles[0] if len(articles) == 1 else None) or soup.body or soup
    return _Sections().collect(root), title or path.stem, "text/html"


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


class _Sections:
    """Walks the tree in document order, cutting a new section at every heading."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.stack: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.inline: list[str] = []

    def collect(self, root: Tag | BeautifulSoup) -> list[Section]:
        self._walk(root)
        self._flush_section()
        return self.sections

    def _walk(self, node: Tag | BeautifulSoup) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, Comment | Declaration | Doctype | ProcessingInstruction):
                    self.inline.append(str(child))
            elif isinstance(child, Tag):
                self._tag(child)

    def _tag(self, tag: Tag) -> None:
        name = tag.name
        if name in _HEADINGS:
            self._heading(_HEADINGS[name], _clean(tag.get_text(" ")))
        elif name == "pre":  # code keeps its line breaks and indentation
            self._end_line()
            self.lines.extend(line.rstrip() for line in tag.get_text().strip("\n").split("\n"))
        elif name in _CELLS:
            self.inline.append(" ")
            self._walk(tag)
            self.inline.append(" |")
        elif name in _BLOCKS:
            self._end_line()
            self._walk(tag)
            self._end_line()
        else:
            self._walk(tag)

    def _heading(self, level: int, text: str) -> None:
        self._flush_section()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        if text:
            self.stack.append((level, text))
            self.lines.append(text)

    def _end_line(self) -> None:
        line = _clean("".join(self.inline)).removesuffix(" |").removesuffix("|").strip()
        if line:
            self.lines.append(line)
        self.inline = []

    def _flush_section(self) -> None:
        self._end_line()
        heading = " > ".join(t for _, t in self.stack) or None
        # A section holding only its heading (the next heading follows at once) carries no content of its own.
        if self.lines and not (heading and self.lines == [self.stack[-1][1]]):
            self.sections.append(Section("\n".join(self.lines), heading=heading))
        self.lines = []
