"""Generate the hostile-document corpus into a folder (nothing large is committed; tests call this).

``python -m tests.hostile.generate DIR`` writes the files and prints what each must end as.
Each entry is ``name -> Hostile(data, filename, expect)``: ``filename`` is what the client
claims the document is called (``../``, NUL bytes, 10 KB of unicode), ``expect`` the
terminal states a correct system may reach for it.
"""

import io
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pikepdf

UNICODE_10K = ("Ünïcødé ☃ 漢字 العربية Ελληνικά 🚀 " * 400)[:5000]  # 5,000 characters, ~10 KB of UTF-8


@dataclass(frozen=True)
class Hostile:
    data: bytes
    filename: str
    expect: frozenset[str]
    why: str


def _text_pdf(pages: int, text: str = "Hostile corpus page", *, metadata: dict[str, str] | None = None) -> bytes:
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    )
    resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    for n in range(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text} {n + 1}) Tj ET".encode()
        page = pikepdf.Page(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, 612, 792],
                Resources=resources,
                Contents=pdf.make_stream(stream),
            )
        )
        pdf.pages.append(page)
    if metadata:
        for key, value in metadata.items():
            pdf.docinfo[pikepdf.Name("/" + key)] = pikepdf.String(value)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _corrupt_xref(data: bytes) -> bytes:
    """Point startxref at nonsense and scramble the offsets in the xref table."""
    head, _, tail = data.rpartition(b"startxref")
    xref_at = head.rfind(b"\nxref")
    table = head[xref_at:].replace(b" 00000 n", b" 00000 f")
    broken = head[:xref_at] + table.replace(b"0000", b"9999")
    return broken + b"startxref\n123456789\n%%EOF\n"


def _decompression_bomb(side: int = 30_000) -> bytes:
    """One page showing a ``side``×``side`` 8-bit grey image: ~0.9 GB inflated from ~1 MB of Flate."""
    compressor = zlib.compressobj(9)
    row = b"\0" * side
    chunks = [compressor.compress(row) for _ in range(side)]
    packed = b"".join(chunks) + compressor.flush()
    pdf = pikepdf.new()
    image = pdf.make_stream(b"")
    image.write(packed, filter=pikepdf.Name.FlateDecode)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = side, side, 8
    image.ColorSpace = pikepdf.Name.DeviceGray
    page = pikepdf.Page(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, 612, 792],
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
            Contents=pdf.make_stream(b"q 612 0 0 792 0 0 cm /Im0 Do Q"),
        )
    )
    pdf.pages.append(page)
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def corpus() -> dict[str, Hostile]:
    done_or_dead = frozenset({"done", "dead"})
    return {
        "corrupt-xref": Hostile(
            _corrupt_xref(_text_pdf(3)), "corrupt-xref.pdf", done_or_dead, "broken xref: repaired or refused"
        ),
        "html": Hostile(
            b"<!doctype html><html><head><title>x</title></head><body>not a pdf</body></html>\n",
            "page.pdf",
            frozenset({"dead"}),
            "HTML named .pdf",
        ),
        "pages-5000": Hostile(_text_pdf(5000), "pages-5000.pdf", done_or_dead, "5,000 pages"),
        "bomb": Hostile(_decompression_bomb(), "bomb.pdf", done_or_dead, "a ~0.9 GB image in ~1 MB"),
        "evil-names": Hostile(
            _text_pdf(
                1,
                "../../etc/passwd",
                metadata={"Title": "../../../../etc/passwd", "Author": "nul\x00byte", "Subject": UNICODE_10K},
            ),
            # NUL in a file name is refused at the API (tests/test_protocol_bad_input.py); other
            # control characters, ``..`` and long unicode are accepted and must stay harmless.
            "../../" + "évil\x01\x1bname☃" + UNICODE_10K[:200] + ".pdf",
            frozenset({"done"}),
            "../, control characters and unicode in the file name; NUL and 10 KB of unicode in metadata",
        ),
    }


def generate(dest: Path) -> dict[str, Hostile]:
    dest.mkdir(parents=True, exist_ok=True)
    documents = corpus()
    for name, doc in documents.items():
        (dest / f"{name}.pdf").write_bytes(doc.data)
    return documents


if __name__ == "__main__":
    for name, doc in generate(Path(sys.argv[1])).items():
        print(f"{name}: {len(doc.data)} bytes, {doc.why}, expect {'/'.join(sorted(doc.expect))}")
