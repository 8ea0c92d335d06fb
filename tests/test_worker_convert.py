"""End to end: a directory of real PDFs ingested, two real workers, SeaweedFS storage, every job finished."""

import io
import json
import re
import zipfile
from pathlib import PurePosixPath
from urllib.parse import unquote

import pytest

from tests.components.worker import JobsView

pytestmark = pytest.mark.slow


def manifest(fixture_pdfs) -> dict[str, dict]:
    """``file → {phrase, expected}`` from the fixtures' MANIFEST.md table."""
    rows = {}
    for line in (fixture_pdfs / "MANIFEST.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].endswith(".pdf"):
            phrase = re.search(r"`([^`]+)`", cells[3])
            rows[cells[0]] = {"phrase": phrase.group(1) if phrase else None, "expected": cells[4].split(";")[0]}
    return rows


def asset_links(markdown: str) -> list[str]:
    return [unquote(target) for target in re.findall(r"\]\(([^)\s]+)\)", markdown)]


def test_a_directory_of_real_pdfs_is_converted(s3_server, seaweedfs, worker_factory, fixture_pdfs):
    expected = manifest(fixture_pdfs)
    assert len(expected) >= 10
    workers = [worker_factory(s3_server, "--converter", "pdfium", name=f"convert-{i}") for i in (1, 2)]

    summary = json.loads(s3_server.manage("ingest", str(fixture_pdfs), "--json").stdout.strip().splitlines()[-1])
    assert summary["jobs_created"] == len(expected)

    view = JobsView(s3_server)
    jobs = {job["filename"]: job for job in view.all()}
    assert set(jobs) == set(expected)
    finished = {name: view.wait_status(job["id"], {"done", "dead"}, timeout=180) for name, job in jobs.items()}

    for name, job in finished.items():
        if expected[name]["expected"].startswith("dead"):
            assert job["status"] == "dead", name
            assert job["attempts"] == 1
            assert "encrypted: password-protected" in view.error(job)
            continue
        assert job["status"] == "done", f"{name}: {job['status']} {view.error(job)}"
        archive = zipfile.ZipFile(io.BytesIO(view.output_zip(job)))
        names = archive.namelist()
        for member in names:
            path = PurePosixPath(member)
            assert not path.is_absolute() and ".." not in path.parts, member
        assert {"content.md", "meta.json"} <= set(names)
        markdown = archive.read("content.md").decode()
        if expected[name]["phrase"]:
            assert expected[name]["phrase"] in markdown, name
        links = asset_links(markdown)
        for link in links:
            assert link in names, f"{name}: {link} is linked but not in the zip"
        assert {n for n in names if n.startswith("assets/")} == {link for link in links if link.startswith("assets/")}
        meta = json.loads(archive.read("meta.json"))
        assert meta["sha256"] == job["sha256"] and meta["filename"] == name
        assert meta["converter"]["name"] == "pdfium" and meta["converter"]["version"]
        assert meta["pages"] >= 1 and meta["device"] == "cpu"
        assert meta["worker"]["id"] in {w.worker_id for w in workers}
        assert set(meta["seconds"]) >= {"download", "convert", "package"}
        assert meta["converted_at"].endswith("+00:00")
        assert job["result"]["pages"] == meta["pages"]

    assert "Russian" in _markdown(view, finished["multilang.pdf"]) and "Привет" in _markdown(
        view, finished["multilang.pdf"]
    )
    jpeg = zipfile.ZipFile(io.BytesIO(view.output_zip(finished["jpeg.pdf"])))
    assert any(n.startswith("assets/") and n.endswith(".jpg") for n in jpeg.namelist())
    assert all(worker.alive for worker in workers)
    assert all(j["status"] in ("done", "dead") for j in view.all())


def _markdown(view: JobsView, job: dict) -> str:
    return zipfile.ZipFile(io.BytesIO(view.output_zip(job))).read("content.md").decode()
