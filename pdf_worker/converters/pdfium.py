"""The CPU converter: pypdfium2's text layer to Markdown, embedded images to ``assets/``.

No models and no OCR: scanned pages without a text layer come out as their images only.
Lines are grouped into paragraphs by the vertical gaps between them, hyphenated line
ends are joined, lines in a clearly larger font become headings, and every page starts
with a ``<!-- page N -->`` marker so page breaks survive into the Markdown.
"""

import hashlib
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from pdf_worker.converters import (
    ASSETS_DIR,
    MARKDOWN_NAME,
    ConversionResult,
    Progress,
    open_pdf,
    page_range,
)

MIN_IMAGE_PIXELS = 24
# An embedded image is decoded whole to be extracted: past this many pixels (a 12,000 ×
# 8,000 scan is 96 MP, ~290 MB as RGB) it is left out rather than risking the worker's
# memory on a decompression bomb. The page's text is converted either way.
MAX_IMAGE_PIXELS = 100_000_000
"""Images smaller than this on either side (rules, bullets, masks) are not worth an asset."""
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class Line:
    text: str
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 0.1)


@dataclass
class Block:
    """A paragraph or an image, with the page height it starts at (for reading order)."""

    top: float
    markdown: str


class PdfiumConverter:
    name = "pdfium"
    device = "cpu"

    @property
    def version(self) -> str:
        import pypdfium2.version as v

        return f"pypdfium2 {v.PYPDFIUM_INFO}, pdfium {v.PDFIUM_INFO}"

    def load(self) -> None:
        import pypdfium2  # noqa: F401 - fail at start-up, not at the first job

    def convert(
        self, pdf_path: Path, out_dir: Path, *, pages: range | None = None, progress: Progress | None = None
    ) -> ConversionResult:
        document = open_pdf(pdf_path)
        try:
            count = len(document)
            wanted = page_range(pages, count)
            assets = out_dir / ASSETS_DIR
            assets.mkdir(parents=True, exist_ok=True)
            seen_images: dict[str, str] = {}
            parts: list[str] = []
            if progress:
                progress(0, len(wanted))
            for done, index in enumerate(wanted, start=1):
                page = document[index]
                try:
                    blocks = _text_blocks(page) + _image_blocks(page, index, assets, seen_images)
                finally:
                    page.close()
                blocks.sort(key=lambda block: -block.top)
                body = "\n\n".join(block.markdown for block in blocks)
                parts.append(f"<!-- page {index + 1} -->\n\n{body}".rstrip())
                if progress:
                    progress(done, len(wanted))
            (out_dir / MARKDOWN_NAME).write_text("\n\n".join(parts) + "\n", encoding="utf-8")
            return ConversionResult(pages=len(wanted), page_count=count)
        finally:
            document.close()


def _lines(page) -> list[Line]:
    """The page's text lines in content order, each with its vertical extent."""
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        lines: list[Line] = []
        index = 0  # pdfium counts UTF-16 code units
        for raw in re.split(r"(\r\n|\n|\r)", text):
            units = len(raw.encode("utf-16-le")) // 2
            if raw in ("\r\n", "\n", "\r"):
                index += units
                continue
            cleaned = CONTROL_CHARS.sub("", raw).strip()
            if cleaned:
                # pdfium merges the line's character boxes into a few rectangles in C: a
                # couple of calls per line rather than one ctypes call per character.
                boxes = [textpage.get_rect(i) for i in range(textpage.count_rects(index, units))]
                boxes = [box for box in boxes if box[3] > box[1]]  # generated characters have no box
                if boxes:
                    lines.append(Line(cleaned, max(b[3] for b in boxes), min(b[1] for b in boxes)))
                elif lines:
                    lines[-1].text += " " + cleaned
            index += units
        return lines
    finally:
        textpage.close()


def _text_blocks(page) -> list[Block]:
    lines = _lines(page)
    if not lines:
        return []
    body_height = statistics.median(line.height for line in lines)
    paragraphs: list[list[Line]] = [[lines[0]]]
    for previous, line in zip(lines, lines[1:], strict=False):
        gap = previous.bottom - line.top
        moved_up = line.top > previous.top + body_height  # a new column or a float
        size_changed = abs(line.height - previous.height) > 0.35 * body_height
        if gap > 0.7 * body_height or moved_up or size_changed:
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
    return [Block(group[0].top, _paragraph_markdown(group, body_height)) for group in paragraphs]


def _paragraph_markdown(group: list[Line], body_height: float) -> str:
    text = group[0].text
    for line in group[1:]:
        if re.search(r"\w-$", text) and line.text[:1].islower():
            text = text[:-1] + line.text  # hyph-enation across a line break
        else:
            text += " " + line.text
    text = re.sub(r"\s+", " ", text).strip()
    heading = len(group) <= 2 and len(text) < 120 and min(line.height for line in group) >= 1.35 * body_height
    return f"## {text}" if heading else text


def _image_blocks(page, index: int, assets: Path, seen: dict[str, str]) -> list[Block]:
    """Extract embedded images into ``assets/`` (identical images share one file) and link them."""
    import pypdfium2.raw as pdfium_c

    blocks: list[Block] = []
    for number, image in enumerate(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=8), start=1):
        width, height = image.get_px_size()
        if width < MIN_IMAGE_PIXELS or height < MIN_IMAGE_PIXELS:
            continue
        if width * height > MAX_IMAGE_PIXELS:
            print(
                f"page {index + 1}: image {number} left out: {width}×{height} pixels is over the "
                f"{MAX_IMAGE_PIXELS:,} pixel budget",
                file=sys.stderr,
            )
            continue
        stem = assets / f"page-{index + 1:04d}-image-{number:02d}"
        try:
            image.extract(stem)
        except Exception as exc:  # noqa: BLE001 - an undecodable image must not lose the page's text
            print(f"page {index + 1}: image {number} not extracted: {exc}", file=sys.stderr)
            continue
        written = next(iter(sorted(assets.glob(stem.name + ".*"))), None)
        if written is None:
            continue
        digest = hashlib.sha256(written.read_bytes()).hexdigest()
        if digest in seen:
            written.unlink()
            name = seen[digest]
        else:
            name = seen[digest] = written.name
        top = image.get_bounds()[3]
        blocks.append(Block(top, f"![image {number} on page {index + 1}]({ASSETS_DIR}/{name})"))
    return blocks
