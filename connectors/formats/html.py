"""HTML: the readable text of the page, one section per heading, with page chrome (nav, scripts, forms) dropped.

Parsed by lxml (libxml2's forgiving HTML parser) and walked without recursion. Not BeautifulSoup: its Python
object per tag cost ~1 GB and ~50 s on 8 MB of tags, and deep nesting overflowed the stack; lxml's C tree takes a
fraction of that and the explicit stack survives any depth.

A page that declares its charset (`<meta charset>`, XML prolog) is decoded with it; an undeclared one (or one in
UTF-16/32, BOM or not) by our own detection, which prefers cp1252 over cp1250 when the two tie, as they do for
most short Western pages. Blocks become lines so words from adjacent paragraphs or cells are never glued together.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

from bs4.dammit import EncodingDetector
from lxml import etree
from lxml import html as lxml_html

from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.formats.text import decode_or_fail
from rag.documents import Section
from rag.errors import SourceError

_DROP = frozenset(
    ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg", "iframe")
)
_CONTENT_ROOTS = ("article", "main")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = frozenset(
    "address article blockquote body br caption dd details dialog div dl dt fieldset figcaption figure hr html li "
    "main ol p pre section summary table tbody tfoot thead tr ul".split()
)
_CELLS = frozenset(("td", "th"))
_SPACES = re.compile(r"\s+")
_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>")
MAX_TAGS = 1_500_000  # the largest real pages (single-page specs) have a few hundred thousand


@register(".html", ".htm", ".xhtml", mimes=("text/html", "application/xhtml+xml"))
def load_html(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    tags = data.count(b"<")
    if tags > MAX_TAGS:  # libxml2 needs ~250 bytes per element: a page of millions is generated junk or an attack
        raise SourceError(str(path), f"too many HTML tags ({tags:,}; the limit is {MAX_TAGS:,})")
    text = _decode(path, data)
    if not text.strip():
        return [], path.stem, "text/html"
    # libxml2 rejects str input that carries an encoding declaration; the text is decoded already.
    text = _XML_PROLOG.sub("", text, count=1)
    try:
        document = lxml_html.document_fromstring(text, parser=_parser())
    except (etree.ParserError, ValueError):  # nothing but whitespace, comments or a doctype
        return [], path.stem, "text/html"
    title_el = document.find(".//title")
    title = _clean("".join(title_el.itertext())) if title_el is not None else ""
    if not title:
        h1 = next((h for h in document.iter("h1") if not _dropped(h)), None)
        title = _clean("".join(h1.itertext())) if h1 is not None else ""
    mains = [m for m in document.iter("main") if not _dropped(m)]
    articles = [a for a in document.iter("article") if not _dropped(a)]
    if mains:
        root = mains[0]
    elif len(articles) == 1:
        root = articles[0]
    else:
        body = document.find("body")
        root = body if body is not None else document
    return _Sections().collect(root), title or path.stem, "text/html"


def _parser() -> lxml_html.HTMLParser:
    # huge_tree lifts libxml2's depth and text-size caps, which otherwise cut pathological pages short silently.
    return lxml_html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, huge_tree=True)


def _decode(path: Path, data: bytes) -> str:
    declared = EncodingDetector.find_declared_encoding(data, is_html=True)
    if declared and not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode(declared, errors="replace")
        except LookupError:  # an encoding name Python does not know: detect instead
            pass
    return decode_or_fail(path, data)


def _dropped(element: etree._Element) -> bool:
    """Inside page chrome (nav, scripts, a page-level header…)?"""
    for node in (element, *element.iterancestors()):
        if _is_chrome(node):
            return True
    return False


def _is_chrome(element: etree._Element) -> bool:
    name = element.tag if isinstance(element.tag, str) else ""
    if name not in _DROP:
        return False
    # A page's header and footer are chrome, but an article's <header> holds its own title.
    if name in ("header", "footer"):
        return not any(a.tag in _CONTENT_ROOTS for a in element.iterancestors())
    return True


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


class _Sections:
    """Walks the tree in document order with an explicit stack, cutting a new section at every heading."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.stack: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.inline: list[str] = []

    def collect(self, root: etree._Element) -> list[Section]:
        # Each open element keeps an iterator over its children, so a body of a million children costs one proxy
        # at a time, not a million.
        todo: list[tuple[etree._Element, Iterator[etree._Element]]] = []
        self._open(root, todo, root)
        while todo:
            parent, children = todo[-1]
            element = next(children, None)
            if element is None:
                todo.pop()
                self._close(parent, parent is not root)
            else:
                self._open(element, todo, root)
        self._flush_section()
        return self.sections

    def _open(
        self, element: etree._Element, todo: list[tuple[etree._Element, Iterator[etree._Element]]], root: object
    ) -> None:
        """Enter an element: skip chrome, cut at headings, keep <pre> as is, else descend into it."""
        name = element.tag if isinstance(element.tag, str) else ""
        if not name or _is_chrome(element):
            pass  # skip the element and its content, keep what follows it
        elif name in _HEADINGS:
            self._heading(_HEADINGS[name], _clean("".join(element.itertext())))
        elif name == "pre":  # code keeps its line breaks and indentation
            self._end_line()
            self.lines.extend(line.rstrip() for line in "".join(element.itertext()).strip("\n").split("\n"))
        else:
            if name in _CELLS:
                self.inline.append(" ")
            elif name in _BLOCKS:
                self._end_line()
            if element.text:
                self.inline.append(element.text)
            todo.append((element, iter(element)))
            return
        if element is not root and element.tail:
            self.inline.append(element.tail)

    def _close(self, element: etree._Element, with_tail: bool) -> None:
        if element.tag in _CELLS:
            self.inline.append(" |")
        elif element.tag in _BLOCKS:
            self._end_line()
        if with_tail and element.tail:
            self.inline.append(element.tail)
        if len(self.inline) > 4096:  # a line of a million inline tags: join as we go
            self.inline = ["".join(self.inline)]

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
