"""One module per file format; importing this package registers every loader with `connectors.base`.

To add a format, write `formats/<name>.py` with a `@register(".ext")` loader and import it here.
"""

from connectors.formats import csvfile, docx, epub, html, jsonfile, markdown, pdf, pptx, text

__all__ = ["csvfile", "docx", "epub", "html", "jsonfile", "markdown", "pdf", "pptx", "text"]
