"""Bytes → text for formats that carry no reliable encoding of their own (plain text, Markdown).

Order matters: a BOM is proof; BOM-less UTF-16/32 is recognisable by its NUL bytes (and is valid UTF-8, so it must
be caught before the UTF-8 attempt); strict UTF-8 is right for most files and never guesses; only then do we ask
charset-normalizer, which guesses well for legacy code pages (cp1252, cp1251, big5…) but is slow and fallible.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

_BOMS = (  # UTF-32 before UTF-16: the UTF-32 LE BOM starts with the UTF-16 LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class UndecodableText(ValueError):
    """The bytes are not text in any encoding we can recognise (most likely a binary file)."""


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding; newlines come back as "\\n" and there is no BOM.

    >>> decode_text("café".encode("utf-16"))
    'café'
    """
    text = _decode(data)
    if _looks_binary(text):
        raise UndecodableText("not text: the file looks binary")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes) -> str:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            # A BOM is strong evidence: replace a stray bad byte rather than reject the whole file.
            return data[len(bom) :].decode(codec, errors="replace")
    if b"\x00" in data[:4096]:
        # NULs are valid UTF-8 but never in real text: wide text without a BOM, or a binary file.
        codec = _guess_wide_codec(data[:4096])
        if codec:
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                pass
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise UndecodableText("not text: could not detect the encoding (is it a binary file?)")
    # Short Western text fits cp1250, cp1252 and DOS code pages like cp775 about equally well, and the detector then
    # picks one of the others ("naïve" becomes "naďve", "Zürich" "Z³rich"); on a near-tie, Windows' Western code
    # page is by far the likelier author.
    for match in matches:
        tie = match.chaos <= best.chaos + 0.01 and match.coherence >= best.coherence - 0.05
        if tie and "cp1252" in (match.encoding, *match.could_be_from_charset):
            try:
                return data.decode("cp1252")
            except UnicodeDecodeError:
                break
    return str(best)


def _guess_wide_codec(sample: bytes) -> str | None:
    """Spot BOM-less UTF-16/32 by where the NUL bytes fall (ASCII-heavy text has one or three per character)."""
    sample = sample[: len(sample) // 4 * 4]
    if not sample:
        return None
    quarter = len(sample) // 4
    zeros = [sample[i::4].count(0) / quarter for i in range(4)]
    if min(zeros[1], zeros[2], zeros[3]) > 0.9:
        return "utf-32-le"
    if min(zeros[0], zeros[1], zeros[2]) > 0.9:
        return "utf-32-be"
    if zeros[1] > 0.6 and zeros[3] > 0.6 and zeros[0] < 0.2 and zeros[2] < 0.2:
        return "utf-16-le"
    if zeros[0] > 0.6 and zeros[2] > 0.6 and zeros[1] < 0.2 and zeros[3] < 0.2:
        return "utf-16-be"
    return None


def _looks_binary(text: str) -> bool:
    """Control characters other than whitespace are rare in text; a few percent means we decoded a binary file."""
    sample = text[:4096]
    if not sample:
        return False
    controls = sum(1 for ch in sample if (ch < " " and ch not in "\t\n\r\f\v") or ch == "\x7f")
    return "\x00" in sample or controls / len(sample) > 0.05
