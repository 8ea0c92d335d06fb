"""Object storage (SeaweedFS) stopped for a while: transfers are retried, no job is ``done`` without its
output, and nothing is lost when storage returns. A worker killed while it waits on storage
(downloading or uploading) loses the job to another worker, with one attempt spent."""

import signal

import pytest
import requests

from tests.components.worker import SLOW_PAGE_ENV, JobsView, ingest_one, job_row, wait_for
from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = pytest.mark.slow

QUICK = {"BLOBFORGE_LEASE_SECONDS": "6", "BLOBFORGE_HEARTBEAT_SECONDS": "1", "BLOBFORGE_RETRY_BASE_SECONDS": "0"}


@pytest.fixture
def s3_outage_server(server_factory, private_seaweedfs):
    """A server on a SeaweedFS of the test's own, which the test stops and starts."""
    return server_factory(**QUICK, **private_seaweedfs.env(prefix="outage")), private_seaweedfs


def test_server_answers_storage_outage_with_a_json_5xx_never_a_500_and_never_done_without_output(
    server_factory, private_seaweedfs
):
    server = server_factory(BLOBFORGE_LEASE_SECONDS="60", **private_seaweedfs.env(prefix="outage"))
    storage = private_seaweedfs
    (server.data_dir / "doc.pdf").write_bytes(tiny_pdf(1))
    server.manage("submit", str(server.data_dir / "doc.pdf"))
    worker = ProtocolWorker(server.base_url, *server.create_worker("w"))
    job = worker.claim()
    output = tiny_output_zip()
    assert worker.upload_output(job, output).status_code == 200

    storage.stop()
    completed = worker.complete(job, output)
    assert completed.status_code in (502, 503), completed.text
    assert "storage" in completed.json()["detail"]
    assert requests.get(server.base_url + "/readyz", timeout=30).status_code == 503
    assert job_row(server, job.id)["status"] == "running", "not done while its output cannot be checked"

    storage.start()
    assert worker.complete(job, output).status_code == 200
    assert '" 500 ' not in server.log()


def stage_is(server, job_id: int, stage: str):
    return lambda: (row := job_row(server, job_id))["stage"] == stage and row


def test_worker_retries_download_and_upload_through_storage_outages(s3_outage_server, worker_factory, fixture_pdfs):
    server, storage = s3_outage_server
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")
    storage.stop()
    worker = worker_factory(server, "--converter", "pdfium", name="patient", env={SLOW_PAGE_ENV: "1"})
    worker.wait_log("source download failed", timeout=60)
    assert job_row(server, job_id)["status"] == "running"

    storage.start()
    wait_for(stage_is(server, job_id, "converting"), 60, "the download to go through once storage is back")
    storage.stop()
    worker.wait_log(f"job {job_id}: upload failed", timeout=60)
    row = job_row(server, job_id)
    assert row["status"] == "running" and row["stage"] == "uploading", row

    storage.start()
    view = JobsView(server)
    job = view.wait_status(job_id, {"done", "dead"}, timeout=90)
    assert job["status"] == "done" and job["attempts"] == 1, "the outages cost no attempt"
    assert view.output_zip(job)[:2] == b"PK"
    assert worker.alive


@pytest.mark.parametrize("stage", ["downloading", "uploading"])
def test_worker_killed_while_waiting_on_storage_loses_the_job_with_one_attempt_spent(
    s3_outage_server, worker_factory, fixture_pdfs, stage
):
    server, storage = s3_outage_server
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")
    if stage == "downloading":
        storage.stop()
    doomed = worker_factory(server, "--converter", "pdfium", name="doomed", env={SLOW_PAGE_ENV: "1"})
    if stage == "uploading":
        wait_for(stage_is(server, job_id, "converting"), 60, "the conversion to start")
        storage.stop()
    wait_for(stage_is(server, job_id, stage), 90, f"the doomed worker to be {stage}")

    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait()
    storage.start()
    survivor = worker_factory(server, "--converter", "pdfium", name="survivor")

    job = JobsView(server).wait_status(job_id, {"done", "dead"}, timeout=120)
    assert job["status"] == "done" and job["attempts"] == 2
    assert [e["actor"] for e in job["events"] if e["to_status"] == "done"] == ["worker:survivor"]
    assert any("lease expired" in e["message"] for e in job["events"])
    assert survivor.alive
