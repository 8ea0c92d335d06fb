"""A conversion that runs past its deadline is killed and counts as a failed attempt; the worker carries on."""

import pytest

from tests.components.worker import SLOW_PAGE_ENV, JobsView, ingest_one, wait_for

pytestmark = pytest.mark.slow


def test_a_conversion_past_its_deadline_is_killed_and_the_attempt_fails(server_factory, worker_factory, fixture_pdfs):
    server = server_factory(BLOBFORGE_RETRY_BASE_SECONDS="0", BLOBFORGE_MAX_ATTEMPTS="2")
    # Deadline 1 s + 0.5 s a page; the test hook makes the one page take 60 s.
    worker = worker_factory(
        server,
        "--converter",
        "pdfium",
        "--deadline-base",
        "1",
        "--deadline-per-page",
        "0.5",
        name="hasty",
        env={SLOW_PAGE_ENV: "60"},
    )
    job_id = ingest_one(server, fixture_pdfs / "crazyones.pdf")

    view = JobsView(server)
    job = view.wait_status(job_id, {"done", "dead"}, timeout=90)
    assert job["status"] == "dead"
    assert job["attempts"] == 2
    failures = [e["message"] for e in job["events"] if e["from_status"] == "running"]
    assert len(failures) == 2 and all("deadline exceeded" in message for message in failures)
    assert "limit 2s" in failures[0]  # base 1 s + 0.5 s × 1 page
    assert worker.alive
    # A fresh conversion process after each kill (the second starts once the failure is reported).
    wait_for(lambda: worker.log().count(" ready: ") == 3, 30, "a fresh conversion process after each kill")
