"""The pdfium converter on real PDFs (marker's start-up checks: test_worker_marker.py)."""

import re

import pytest

from pdf_worker.converters import InputError
from pdf_worker.converters.pdfium import PdfiumConverter

PHRASES = {
    "crazyones.pdf": "misfits",
    "example.pdf": "Beautiful is better",
    "multilang.pdf": "Russian",
    "tagged.pdf": "Heading",
    "pdflatex-outline.pdf": "Contents",
    "Seige_of_Vicksburg_Sample_OCR.pdf": "VICKSBURG",
    "shared-mime-info-spec.pdf": "freedesktop",
    "libtasn1.pdf": "Abstract Syntax Notation",
}


def _convert(pdf, out, **kwargs) -> str:
    converter = PdfiumConverter()
    converter.load()
    converter.convert(pdf, out, **kwargs)
    return (out / "content.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(PHRASES))
def test_pdfium_keeps_the_text_layer_in_page_order(fixture_pdfs, tmp_path, name):
    markdown = _convert(fixture_pdfs / name, tmp_path)
    assert PHRASES[name] in markdown
    pages = [int(n) for n in re.findall(r"<!-- page (\d+) -->", markdown)]
    assert pages == list(range(1, len(pages) + 1)) and pages


def test_pdfium_keeps_unicode(fixture_pdfs, tmp_path):
    markdown = _convert(fixture_pdfs / "multilang.pdf", tmp_path)
    for text in ("Привет, мир", "你好世界", "مرحبا", "こんにちは世界"):
        assert text in markdown


def test_pdfium_joins_lines_into_paragraphs(fixture_pdfs, tmp_path):
    markdown = _convert(fixture_pdfs / "crazyones.pdf", tmp_path)
    assert "The troublemakers. The round pegs in the square holes." in markdown  # two lines, one paragraph


def test_pdfium_extracts_embedded_images_and_links_them(fixture_pdfs, tmp_path):
    markdown = _convert(fixture_pdfs / "jpeg.pdf", tmp_path)
    links = re.findall(r"!\[[^\]]*\]\((assets/[^)]+)\)", markdown)
    assert len(links) == 1 and links[0].endswith(".jpg")
    assert (tmp_path / links[0]).read_bytes()[:3] == b"\xff\xd8\xff"  # the JPEG itself, not re-encoded


def test_pdfium_converts_a_page_range(fixture_pdfs, tmp_path):
    markdown = _convert(fixture_pdfs / "pdflatex-outline.pdf", tmp_path, pages=range(1, 3))
    assert re.findall(r"<!-- page (\d+) -->", markdown) == ["2", "3"]


def test_pdfium_names_the_cause_of_an_unusable_document(fixture_pdfs, tmp_path):
    with pytest.raises(InputError, match="^encrypted: password-protected"):
        _convert(fixture_pdfs / "encrypted-file.pdf", tmp_path)
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="^empty: zero-byte"):
        _convert(empty, tmp_path)
