"""The server goes away while a worker uploads its result: the worker retries and the job completes."""

import pytest

from tests.components.worker import SLOW_PAGE_ENV, JobsView, ingest_one

pytestmark = pytest.mark.slow


def test_a_finished_result_survives_a_server_outage(server_factory, worker_factory, fixture_pdfs):
    server = server_factory(BLOBFORGE_LEASE_SECONDS="30", BLOBFORGE_HEARTBEAT_SECONDS="2")
    worker = worker_factory(server, "--converter", "pdfium", name="patient", env={SLOW_PAGE_ENV: "2"})
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")
    worker.wait_log(f"job {job_id}: converting")

    server.stop()  # local storage: uploads go to this server too
    worker.wait_log(f"job {job_id}: uploading", timeout=60)
    worker.wait_log("upload-url failed", timeout=30)  # it is retrying, not giving up
    server.start()

    job = JobsView(server).wait_status(job_id, {"done", "dead"}, timeout=60)
    assert job["status"] == "done"
    assert job["attempts"] == 1
    assert worker.alive
    assert f"job {job_id}: done" in worker.log()
