"""EPUB with the standard library's zipfile and lxml: the package file's spine gives the chapters in reading
order, each chapter (XHTML) is read by the HTML loader, so headings become heading paths as on a web page.

Not ebooklib: it inflates every entry of the book up front (images too) and parses XML with entity resolution
on; here the archive is checked for bombs first and only the chapters are read, with entities and network off.
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from lxml import etree

from connectors.archive import open_zip, read_member
from connectors.base import DEFAULT_OPTIONS, LoadOptions, register
from connectors.formats.html import load_html
from rag.documents import Section
from rag.errors import SourceError

_NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_CHAPTER_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True)


@register(".epub", mimes=("application/epub+zip",))
def load_epub(path: Path, data: bytes, options: LoadOptions = DEFAULT_OPTIONS) -> tuple[list[Section], str, str]:
    with open_zip(path, data, "EPUB", options) as archive:
        opf_path = _package_path(archive, path)
        opf = _xml(read_member(archive, opf_path, path, "EPUB"), path, opf_path)
        title = " ".join(opf.xpath("string(//dc:title)", namespaces=_NS).split())
        sections: list[Section] = []
        for number, (name, media_type) in enumerate(_spine(opf, opf_path), start=1):
            if media_type not in _CHAPTER_TYPES or name not in archive.NameToInfo:
                continue
            chapter = read_member(archive, name, path, "EPUB")
            try:
                parts, chapter_title, _ = load_html(Path(name), chapter, options)
            except SourceError:
                continue  # an empty or unreadable chapter (a cover image page) costs that chapter only
            label = chapter_title if chapter_title != Path(name).stem else f"Chapter {number}"
            sections.extend(Section(p.text, heading=p.heading or label) for p in parts)
    return sections, title or path.stem, "application/epub+zip"


def _package_path(archive: zipfile.ZipFile, path: Path) -> str:
    container = _xml(read_member(archive, "META-INF/container.xml", path, "EPUB"), path, "META-INF/container.xml")
    full = container.xpath("string(//c:rootfile/@full-path)", namespaces=_NS)
    if not full:  # some books omit the namespace; take any .opf as the package
        full = next((n for n in archive.namelist() if n.lower().endswith(".opf")), "")
    if not full:
        raise SourceError(str(path), "not a valid EPUB: no package (.opf) file")
    return str(full)


def _spine(opf: etree._Element, opf_path: str) -> list[tuple[str, str]]:
    base = posixpath.dirname(opf_path)
    items = {
        item.get("id"): (item.get("href", ""), item.get("media-type", ""))
        for item in opf.xpath("//opf:manifest/opf:item", namespaces=_NS)
    }
    order = [ref.get("idref") for ref in opf.xpath("//opf:spine/opf:itemref", namespaces=_NS)]
    chosen = [items[i] for i in order if i in items] or sorted(items.values())
    return [(_join(base, href), media_type) for href, media_type in chosen if href]


def _join(base: str, href: str) -> str:
    href = unquote(href.split("#", 1)[0])
    return str(PurePosixPath(posixpath.normpath(posixpath.join(base, href))))


def _xml(data: bytes, path: Path, name: str) -> etree._Element:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SourceError(str(path), f"not a valid EPUB: {name} is not XML ({exc})") from exc
    if root is None:
        raise SourceError(str(path), f"not a valid EPUB: {name} is empty")
    return root
