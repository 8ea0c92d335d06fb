"""How long a worker runs: --once, --max-jobs, and refusing to run with credentials the server rejects."""

import shutil

import pytest

from tests.components.worker import JobsView

pytestmark = pytest.mark.slow


def test_once_and_max_jobs_and_bad_credentials(server, worker_factory, fixture_pdfs, tmp_path):
    idle = worker_factory(server, "--converter", "pdfium", "--once", name="once", launch=False).start()
    assert idle.wait(60) == 0, idle.log()  # nothing queued: one long-poll, then exit
    assert "stopped after 0 job(s)" in idle.log()

    folder = tmp_path / "three"
    folder.mkdir()
    for name in ("crazyones.pdf", "example.pdf", "multilang.pdf"):
        shutil.copy(fixture_pdfs / name, folder / name)
    server.manage("ingest", str(folder), "--json")
    two = worker_factory(server, "--converter", "pdfium", "--max-jobs", "2", name="two", launch=False).start()
    assert two.wait(120) == 0, two.log()
    statuses = sorted(job["status"] for job in JobsView(server).all())
    assert statuses == ["done", "done", "pending"]

    impostor = worker_factory(server, "--converter", "pdfium", name="impostor", launch=False)
    impostor.env["BLOBFORGE_WORKER_SECRET"] = "bfw_not-the-secret"
    assert impostor.start().wait(60) == 2
    assert "refused this worker" in impostor.log() and "BLOBFORGE_WORKER_SECRET" in impostor.log()
