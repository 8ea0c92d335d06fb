"""Long PDFs in page ranges: merged into one document, checkpointed, resumed after a kill -9, progress on the server."""

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from pdf_worker.chunks import FinishedRange, merge
from pdf_worker.converters.pdfium import PdfiumConverter
from tests.components.worker import SLOW_PAGE_ENV, JobsView, ingest_one, wait_for

pytestmark = pytest.mark.slow


def _zip(view: JobsView, job: dict) -> zipfile.ZipFile:
    assert job["status"] == "done", view.error(job)
    return zipfile.ZipFile(io.BytesIO(view.output_zip(job)))


def _page_markers(markdown: str) -> list[int]:
    return [int(n) for n in re.findall(r"<!-- page (\d+) -->", markdown)]


def _unprefixed(markdown: str) -> str:
    return re.sub(r"assets/p\d{4}-", "assets/", markdown)


def test_ranges_with_the_same_asset_names_merge_without_collisions(tmp_path):
    ranges = []
    for start, stop, colour in ((0, 10, b"red"), (10, 17, b"blue")):
        folder = tmp_path / f"pages-{start + 1:04d}-{stop:04d}"
        (folder / "assets").mkdir(parents=True)
        (folder / "assets" / "figure.png").write_bytes(colour)
        (folder / "content.md").write_text(f"Pages {start + 1}-{stop}\n\n![a figure](assets/figure.png)\n")
        metadata = {"table_of_contents": [{"title": f"Part {start}"}], "debug": start}
        ranges.append(FinishedRange(range(start, stop), folder, {"metadata": metadata}))
    out = tmp_path / "out"
    out.mkdir()
    metadata = merge(ranges, out)
    markdown = (out / "content.md").read_text()
    links = re.findall(r"\]\((assets/[^)]+)\)", markdown)
    assert links == ["assets/p0001-figure.png", "assets/p0011-figure.png"]
    assert [(out / link).read_bytes() for link in links] == [b"red", b"blue"]
    assert markdown.index("Pages 1-10") < markdown.index("Pages 11-17")
    assert metadata == {"table_of_contents": [{"title": "Part 0"}, {"title": "Part 10"}], "debug": 0}


def test_long_pdfs_are_converted_in_ranges_and_merged_into_one_document(server, worker_factory, fixture_pdfs, tmp_path):
    worker_factory(server, "--converter", "pdfium", "--chunk-pages", "10", "--slots", "2")
    view = JobsView(server)
    ids = {name: ingest_one(server, fixture_pdfs / name) for name in ("libtasn1.pdf", "shared-mime-info-spec.pdf")}
    expected_ranges = {
        "libtasn1.pdf": ["1-10", "11-20", "21-30", "31-36"],
        "shared-mime-info-spec.pdf": ["1-10", "11-17"],
    }
    for name, job_id in ids.items():
        archive = _zip(view, view.wait_status(job_id, {"done", "dead"}, timeout=180))
        meta = json.loads(archive.read("meta.json"))
        assert [r["pages"] for r in meta["page_ranges"]] == expected_ranges[name]
        assert meta["chunk_pages"] == 10 and meta["resumed_pages"] == 0
        assert all(r["attempt"] == 1 for r in meta["page_ranges"])
        markdown = archive.read("content.md").decode()
        assert _page_markers(markdown) == list(range(1, meta["page_count"] + 1))
        for link in re.findall(r"\]\((assets/[^)\s]+)\)", markdown):
            assert link in archive.namelist() and re.match(r"assets/p\d{4}-", link)

        # The merged document is the whole-document conversion, apart from the range prefix on assets.
        whole = tmp_path / name
        whole.mkdir()
        PdfiumConverter().convert(fixture_pdfs / name, whole)
        assert _unprefixed(markdown) == (whole / "content.md").read_text()
    assert "Abstract Syntax Notation" in _zip(view, view.get(ids["libtasn1.pdf"])).read("content.md").decode()


def test_a_killed_worker_resumes_from_its_last_finished_range(server_factory, worker_factory, fixture_pdfs):
    server = server_factory(BLOBFORGE_HEARTBEAT_SECONDS="1", BLOBFORGE_RETRY_BASE_SECONDS="0")
    worker = worker_factory(server, "--converter", "pdfium", "--chunk-pages", "10", env={SLOW_PAGE_ENV: "0.3"})
    view = JobsView(server)
    job_id = ingest_one(server, fixture_pdfs / "libtasn1.pdf")
    checkpoints = Path(worker.command[worker.command.index("--work-dir") + 1]) / "checkpoints"

    def finished_ranges() -> list[Path]:
        return sorted(p for p in checkpoints.glob("*/pages-*") if not p.name.endswith(".partial"))

    # Progress reaches the server through heartbeats, page by page, past the first range.
    seen: list[int] = []
    wait_for(
        lambda: (seen.append(view.get(job_id)["pages_done"] or 0) or seen[-1] > 20) and len(finished_ranges()) >= 2,
        90,
        "two ranges checkpointed and pages_done past 20",
    )
    assert view.get(job_id)["pages_total"] == 36
    assert len(set(seen)) >= 3 and seen == sorted(seen)

    worker.kill_group()  # kill -9: no release, no clean-up
    kept = finished_ranges()
    stamps = {path.name: (path / "content.md").stat().st_mtime_ns for path in kept}
    kept_pages = 10 * len(kept)
    assert [p.name for p in kept] == [f"pages-{10 * i + 1:04d}-{10 * i + 10:04d}" for i in range(len(kept))]

    worker.start()  # the same worker (and work dir) comes back; registering takes the job back
    resumed = wait_for(
        lambda: (job := view.get(job_id))["attempts"] == 2 and job["status"] == "running" and job["pages_done"],
        90,
        "the second attempt to report progress",
    )
    assert resumed >= kept_pages  # it starts where the checkpoint ends, not at page 1
    still = {p.name: (p / "content.md").stat().st_mtime_ns for p in finished_ranges() if p.name in stamps}
    assert still == stamps  # the finished ranges were not written again

    job = view.wait_status(job_id, {"done", "dead"}, timeout=120)
    archive = _zip(view, job)
    meta = json.loads(archive.read("meta.json"))
    attempts = [r["attempt"] for r in meta["page_ranges"]]
    assert attempts == [1] * len(kept) + [2] * (4 - len(kept))
    assert meta["resumed_pages"] == kept_pages and job["result"]["resumed_pages"] == kept_pages
    assert _page_markers(archive.read("content.md").decode()) == list(range(1, 37))
    assert f"resuming from its checkpoint: pages 1-{kept_pages} of 36" in worker.log()
    # Removed right after the server accepted the result (which the API may show a moment earlier).
    wait_for(lambda: not list(checkpoints.glob("*")), 10, "the checkpoint to be removed once the job is done")
