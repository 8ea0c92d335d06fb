"""``blobforge hydrate``: Markdown and assets land beside the PDFs; unsafe archives are refused.

One test converts with real ``python -m pdf_worker`` processes; the others complete jobs
through the worker protocol themselves, so they control the output zip (malicious members).
"""

import hashlib
import io
import shutil
import stat
import zipfile

import pytest

from tests.components.client import last_json, run_cli
from tests.components.worker import wait_for

FIGURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def output_zip(filename: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("content.md", f"# {filename}\n\nSee ![figure](assets/figure.png).\n")
        archive.writestr("assets/figure.png", FIGURE)
        archive.writestr("meta.json", '{"engine": "test"}')
    return buffer.getvalue()


def complete_next_job(server, worker, make_zip=output_zip) -> dict:
    """Claim the next job as a worker, upload an output zip and complete it."""
    claimed = worker.post(server.base_url + "/api/v1/worker/claim", json={"job_types": ["pdf"]})
    assert claimed.status_code == 200, claimed.text
    job, lease = claimed.json()["job"], claimed.json()["lease"]["token"]
    data = make_zip(job["source"]["filename"])
    signed = worker.post(
        server.base_url + f"/api/v1/worker/jobs/{job['id']}/upload-url", json={"lease": lease, "size": len(data)}
    ).json()
    put = worker.request(signed["method"], signed["url"], data=data, headers=signed["headers"])
    assert put.status_code < 300, put.text
    output = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    done = worker.post(
        server.base_url + f"/api/v1/worker/jobs/{job['id']}/complete",
        json={"lease": lease, "output": output, "result": {"pages": 1}},
    )
    assert done.status_code == 200, done.text
    return job


@pytest.fixture
def worker(server):
    session = server.worker_session(*server.create_worker("test-worker"))
    assert session.post(server.base_url + "/api/v1/worker/register", json={}).status_code == 200
    return session


def hidden_leftovers(folder) -> list[str]:
    return [p.name for p in folder.rglob(".*")]


def test_hydrate_writes_markdown_and_assets_beside_each_converted_pdf(server, worker, fixture_pdfs, tmp_path):
    docs = tmp_path / "docs"
    (docs / "a").mkdir(parents=True)
    (docs / "b").mkdir()
    shutil.copy(fixture_pdfs / "crazyones.pdf", docs / "a/crazyones.pdf")
    shutil.copy(fixture_pdfs / "example.pdf", docs / "b/example.pdf")
    (docs / "b/readme.txt").write_text("not a PDF, ignored\n")
    token = server.create_token("read,submit")
    assert run_cli(server, token, "ingest", str(docs)).returncode == 0
    complete_next_job(server, worker)
    complete_next_job(server, worker)
    shutil.copy(fixture_pdfs / "tagged.pdf", docs / "b/tagged.pdf")
    assert run_cli(server, token, "ingest", str(docs / "b/tagged.pdf")).returncode == 0

    done = run_cli(server, token, "hydrate", str(docs), "--json")
    assert done.returncode == 0, done.stderr
    assert last_json(done) | {"problems": []} == {
        "written": 2,
        "skipped": 0,
        "not_ready": 1,
        "failed": 0,
        "problems": [],
    }
    for pdf in (docs / "a/crazyones.pdf", docs / "b/example.pdf"):
        markdown = pdf.with_suffix(".md").read_text()
        assert markdown.startswith(f"# {pdf.name}\n")
        assert f"![figure]({pdf.stem}.assets/figure.png)" in markdown
        assert (pdf.parent / f"{pdf.stem}.assets/figure.png").read_bytes() == FIGURE
    assert not (docs / "b/tagged.md").exists()
    assert hidden_leftovers(docs) == []

    again = last_json(run_cli(server, token, "hydrate", str(docs), "--json"))
    assert (again["written"], again["skipped"], again["not_ready"]) == (0, 2, 1)

    (docs / "a/crazyones.md").write_text("edited by hand\n")
    forced = last_json(run_cli(server, token, "hydrate", str(docs / "a"), "--force", "--json"))
    assert forced["written"] == 1
    assert (docs / "a/crazyones.md").read_text().startswith("# crazyones.pdf")
    assert sorted(p.name for p in (docs / "a").iterdir()) == ["crazyones.assets", "crazyones.md", "crazyones.pdf"]


def test_hydrate_lists_pdfs_the_server_does_not_know(server, fixture_pdfs, tmp_path):
    shutil.copy(fixture_pdfs / "example.pdf", tmp_path / "never-ingested.pdf")
    token = server.create_token("read")
    done = run_cli(server, token, "hydrate", str(tmp_path))
    assert done.returncode == 1
    assert "never-ingested.pdf: no job for this PDF" in done.stdout


def traversal(archive: zipfile.ZipFile) -> None:
    archive.writestr("../evil.md", "escaped")


def absolute(archive: zipfile.ZipFile) -> None:
    archive.writestr(zipfile.ZipInfo("/tmp/blobforge-evil-absolute.md"), "escaped")


def symlink(archive: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("assets/passwd")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive.writestr(info, "/etc/passwd")


@pytest.mark.parametrize("member", [traversal, absolute, symlink])
def test_hydrate_refuses_an_archive_with_an_unsafe_member(server, worker, fixture_pdfs, tmp_path, member):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(fixture_pdfs / "crazyones.pdf", docs / "crazyones.pdf")
    token = server.create_token("read,submit")
    assert run_cli(server, token, "ingest", str(docs)).returncode == 0

    def malicious(filename: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("content.md", "# looks fine\n")
            member(archive)
        return buffer.getvalue()

    complete_next_job(server, worker, malicious)
    done = run_cli(server, token, "hydrate", str(docs), "--json")
    assert done.returncode == 1
    summary = last_json(done)
    assert (summary["written"], summary["failed"]) == (0, 1)
    assert "refused the output archive" in summary["problems"][0]["reason"]
    assert sorted(p.name for p in docs.iterdir()) == ["crazyones.pdf"]
    assert not (tmp_path / "evil.md").exists()


@pytest.mark.slow
def test_hydrate_after_real_workers_converted_the_documents(s3_server, worker_factory, fixture_pdfs, tmp_path):
    docs = tmp_path / "docs"
    (docs / "scans").mkdir(parents=True)
    phrases = {"crazyones.pdf": "misfits", "example.pdf": "Beautiful is better", "scans/jpeg.pdf": None}
    for relative in phrases:
        shutil.copy(fixture_pdfs / relative.rsplit("/", 1)[-1], docs / relative)
    token = s3_server.create_token("read,submit")
    assert run_cli(s3_server, token, "ingest", str(docs)).returncode == 0
    for _ in range(2):
        worker_factory(s3_server, "--converter", "pdfium")
    wait_for(
        lambda: {job["status"] for job in last_json(run_cli(s3_server, token, "jobs", "--json"))} == {"done"},
        180,
        "every job to be done",
        interval=1,
    )

    done = run_cli(s3_server, token, "hydrate", str(docs), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert last_json(done)["written"] == 3
    for relative, phrase in phrases.items():
        markdown = (docs / relative).with_suffix(".md").read_text()
        if phrase:
            assert phrase in markdown
    images = list((docs / "scans/jpeg.assets").iterdir())
    assert len(images) == 1
    assert f"](jpeg.assets/{images[0].name})" in (docs / "scans/jpeg.md").read_text()
