"""A worker killed with SIGKILL mid-conversion: its lease expires, the other worker finishes the job."""

import signal

import pytest

from tests.components.worker import SLOW_PAGE_ENV, JobsView, ingest_one, job_row, wait_for

pytestmark = pytest.mark.slow

SHORT_LEASE = {"BLOBFORGE_LEASE_SECONDS": "4", "BLOBFORGE_HEARTBEAT_SECONDS": "1", "BLOBFORGE_RETRY_BASE_SECONDS": "0"}


def test_killed_worker_loses_the_job_to_the_other_worker(server_factory, worker_factory, fixture_pdfs):
    server = server_factory(**SHORT_LEASE)
    doomed = worker_factory(server, "--converter", "pdfium", name="doomed", env={SLOW_PAGE_ENV: "30"})
    survivor = worker_factory(server, "--converter", "pdfium", name="survivor", launch=False)
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")

    # Heartbeats report the stage and page progress while the (slowed) conversion runs.
    row = wait_for(
        lambda: (r := job_row(server, job_id))["stage"] == "converting" and (r["pages_done"] or 0) >= 1 and r,
        60,
        "the doomed worker to be converting",
    )
    assert row["worker"] == "doomed" and row["pages_total"] == 4 and row["attempts"] == 1
    survivor.start().wait_ready()
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait()

    view = JobsView(server)
    job = view.wait_status(job_id, {"done", "dead"}, timeout=90)
    assert job["status"] == "done"
    assert job["attempts"] == 2
    assert any("lease expired" in event["message"] for event in job["events"])
    assert [e["actor"] for e in job["events"] if e["to_status"] == "done"] == ["worker:survivor"]
    assert survivor.alive

    # The dead worker's lease is worthless now: a late completion (or heartbeat) is refused.
    late = server.worker_session(doomed.worker_id, doomed.secret)
    body = {"lease": row["lease"], "output": {"size": 10, "sha256": "0" * 64}, "result": {}}
    refused = late.post(f"{server.base_url}/api/v1/worker/jobs/{job_id}/complete", json=body, timeout=10)
    assert refused.status_code == 409, refused.text
    assert "detail" in refused.json()
    heartbeat = late.post(
        f"{server.base_url}/api/v1/worker/jobs/{job_id}/heartbeat", json={"lease": row["lease"]}, timeout=10
    )
    assert heartbeat.status_code == 409
    assert view.get(job_id)["status"] == "done"
