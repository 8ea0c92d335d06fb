"""Converters behind one small interface, and the checks every converter shares.

A converter is created in the conversion child process, ``load()``-ed once there (models
stay in memory for every later job) and then asked to ``convert`` one document, or a
range of its pages, at a time. It writes ``content.md`` and ``assets/…`` into ``out_dir``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

Progress = Callable[[int, int], None]
"""``progress(pages_done, pages_total)``; called with 0 before the first page."""

MARKDOWN_NAME = "content.md"
ASSETS_DIR = "assets"
EOF_WINDOW = 4096


class InputError(Exception):
    """The document itself is unusable (empty, not a PDF, truncated, corrupt, encrypted): retrying cannot help."""


class ConverterUnavailable(Exception):
    """A converter cannot run on this machine; the message says why and how to fix it."""


@dataclass
class ConversionResult:
    pages: int
    """Pages converted."""
    page_count: int
    """Pages in the document."""
    metadata: dict = field(default_factory=dict)
    """What the converter knows about the pages it converted (marker: ``table_of_contents``,
    ``page_stats``); lists are concatenated when page ranges are merged."""


class Converter(Protocol):
    name: str

    def load(self) -> None:
        """Load models once per process (called before the first job)."""

    @property
    def version(self) -> str: ...

    @property
    def device(self) -> str: ...

    def convert(
        self, pdf_path: Path, out_dir: Path, *, pages: range | None = None, progress: Progress | None = None
    ) -> ConversionResult:
        """Write ``content.md`` and ``assets/`` for ``pages`` (0-based, all when None) into ``out_dir``."""


def check_pdf_file(path: Path) -> None:
    """Refuse bytes no PDF library should be handed, naming the cause (InputError)."""
    size = path.stat().st_size
    if size == 0:
        raise InputError("empty: zero-byte file")
    with path.open("rb") as handle:
        head = handle.read(1024)
        handle.seek(max(size - EOF_WINDOW, 0))
        tail = handle.read()
    if b"%PDF-" not in head:
        shown = head[:16].decode("ascii", "replace").encode("unicode_escape").decode()
        raise InputError(f"not a PDF: the file does not start with %PDF- (it starts with {shown!r})")
    if b"%%EOF" not in tail:
        raise InputError(f"truncated: no %%EOF marker in the last {EOF_WINDOW} bytes (the file was cut short)")


def open_pdf(path: Path):
    """Open with pypdfium2, turning load errors into InputError with the cause first."""
    import pypdfium2 as pdfium

    check_pdf_file(path)
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise InputError("encrypted: password-protected PDF (no password is known for it)") from exc
        raise InputError(f"corrupt: PDFium cannot parse the file ({exc})") from exc
    if len(document) == 0:
        document.close()
        raise InputError("corrupt: the document has no pages")
    return document


def page_range(pages: range | None, count: int) -> range:
    """The requested pages clipped to the document (all pages when None)."""
    if pages is None:
        return range(count)
    return range(max(pages.start, 0), min(pages.stop, count))


def create(name: str) -> Converter:
    """The converter called ``name`` (not yet loaded)."""
    if name == "pdfium":
        from pdf_worker.converters.pdfium import PdfiumConverter

        return PdfiumConverter()
    if name == "marker":
        from pdf_worker.converters.marker import MarkerConverter

        return MarkerConverter()
    raise ValueError(f"unknown converter {name!r}")


def choose(requested: str) -> tuple[str, str]:
    """Resolve ``marker|pdfium|auto`` to a converter that can run here; returns ``(name, why)``.

    Raises ConverterUnavailable when ``marker`` was asked for and cannot run.
    """
    from pdf_worker.converters.marker import preflight

    if requested == "pdfium":
        return "pdfium", "requested"
    if requested == "marker":
        preflight()
        return "marker", "requested"
    try:
        preflight()
    except ConverterUnavailable as exc:
        return "pdfium", f"auto: marker cannot run ({exc})"
    return "marker", "auto: marker and its model weights are available"
