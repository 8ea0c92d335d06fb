"""SIGTERM: stop claiming, finish the current job within --shutdown-grace or release it, unregister, exit 0."""

import signal

import pytest

from tests.components.worker import SLOW_PAGE_ENV, JobsView, ingest_one, wait_for

pytestmark = pytest.mark.slow

LEASE = {"BLOBFORGE_LEASE_SECONDS": "10", "BLOBFORGE_HEARTBEAT_SECONDS": "1", "BLOBFORGE_RETRY_BASE_SECONDS": "0"}


def test_sigterm_with_short_grace_releases_the_job_without_spending_an_attempt(
    server_factory, worker_factory, fixture_pdfs
):
    server = server_factory(**LEASE)
    # 30 s a page (test hook): the conversion is surely still running when the signal arrives.
    leaving = worker_factory(
        server, "--converter", "pdfium", "--shutdown-grace", "1", name="leaving", env={SLOW_PAGE_ENV: "30"}
    )
    staying = worker_factory(server, "--converter", "pdfium", name="staying", launch=False)
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")
    leaving.wait_log(f"job {job_id}: converting")
    staying.start().wait_ready()

    leaving.signal(signal.SIGTERM)
    assert leaving.wait(30) == 0, leaving.log()
    assert "released (no attempt spent)" in leaving.log()

    view = JobsView(server)
    job = view.wait_status(job_id, {"done", "dead"}, timeout=60)
    assert job["status"] == "done"
    assert job["attempts"] == 1  # the released attempt was given back
    assert [e["actor"] for e in job["events"] if e["to_status"] == "done"] == ["worker:staying"]
    released = [e for e in job["events"] if e["actor"] == "worker:leaving" and e["to_status"] == "pending"]
    assert released and "shutdown-grace" in released[0]["message"]
    assert staying.alive


def test_sigterm_with_enough_grace_finishes_the_job_first(server_factory, worker_factory, fixture_pdfs):
    server = server_factory(**LEASE)
    worker = worker_factory(
        server, "--converter", "pdfium", "--shutdown-grace", "120", name="finisher", env={SLOW_PAGE_ENV: "3"}
    )
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")
    worker.wait_log(f"job {job_id}: converting")

    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0, worker.log()
    assert f"job {job_id}: done" in worker.log()
    job = JobsView(server).get(job_id)
    assert job["status"] == "done" and job["attempts"] == 1


def test_a_second_signal_exits_at_once(server_factory, worker_factory, fixture_pdfs):
    server = server_factory(**LEASE)
    worker = worker_factory(
        server, "--converter", "pdfium", "--shutdown-grace", "600", name="impatient", env={SLOW_PAGE_ENV: "30"}
    )
    job_id = ingest_one(server, fixture_pdfs / "crazyones.pdf")
    worker.wait_log(f"job {job_id}: converting")
    worker.signal(signal.SIGTERM)
    wait_for(lambda: "no new jobs" in worker.log(), 10, "the first signal to be noticed")
    worker.signal(signal.SIGINT)
    assert worker.wait(10) == 128 + signal.SIGINT
    assert "exiting at once" in worker.log()
