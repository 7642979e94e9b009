"""One module per file format; importing this package registers every loader with `connectors.base`.

To add a format, write `formats/<name>.py` with a `@register(".ext")` loader and import it here.
"""

from connectors.formats import html, markdown, pdf, text

__all__ = ["html", "markdown", "pdf", "text"]
