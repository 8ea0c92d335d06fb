"""A worker against an unreachable server and with a clock far from the server's.

* The server is down for longer than a lease while the worker converts: the worker gives the
  job up when its lease has run out (it does not deliver a result it no longer owns), carries
  on when the server is back, and the job is finished with one attempt spent.
* The worker's wall clock is a day ahead or behind (``time.time`` shifted in the worker and
  its conversion child through a ``sitecustomize`` on its path): leases still hold through a
  conversion longer than the lease, because only the server's clock decides when a lease ends
  (the worker counts with the monotonic clock from the server's answers).
"""

import os
import subprocess
import sys
import time

import pytest

from tests.components.worker import SLOW_PAGE_ENV, JobsView, ingest_one, job_row, wait_for

pytestmark = pytest.mark.slow

SHORT_LEASE = {"BLOBFORGE_LEASE_SECONDS": "4", "BLOBFORGE_HEARTBEAT_SECONDS": "1", "BLOBFORGE_RETRY_BASE_SECONDS": "0"}


def test_server_gone_longer_than_a_lease_the_worker_gives_up_the_job_and_carries_on(
    server_factory, worker_factory, fixture_pdfs
):
    server = server_factory(**SHORT_LEASE)
    worker = worker_factory(server, "--converter", "pdfium", name="stranded", env={SLOW_PAGE_ENV: "2"})
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")
    wait_for(lambda: job_row(server, job_id)["stage"] == "converting", 60, "the conversion to start")

    server.stop()
    worker.wait_log(f"job {job_id}: gave up, the lease ran out", timeout=90)
    assert worker.alive
    server.start()

    job = JobsView(server).wait_status(job_id, {"done", "dead"}, timeout=120)
    assert job["status"] == "done" and job["attempts"] == 2, "the lost lease cost exactly one attempt"
    assert any("lease expired" in e["message"] for e in job["events"])
    assert [e["to_status"] for e in job["events"]].count("done") == 1
    assert worker.alive


@pytest.mark.parametrize("skew_seconds", [86_400, -86_400])
def test_a_worker_clock_a_day_off_does_not_break_leases(
    server_factory, worker_factory, fixture_pdfs, tmp_path, skew_seconds
):
    shim = tmp_path / "skewed-clock"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import time\n"
        f"_real = time.time\n"
        f"time.time = lambda: _real() + {skew_seconds}\n"
        f"time.time_ns = (lambda real=time.time_ns: real() + {skew_seconds} * 1_000_000_000)\n"
    )
    skewed_now = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env=os.environ | {"PYTHONPATH": str(shim)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert abs(float(skewed_now) - time.time() - skew_seconds) < 60, "the shim shifts the clock"
    server = server_factory(**SHORT_LEASE)
    worker = worker_factory(
        server, "--converter", "pdfium", name="skewed", env={SLOW_PAGE_ENV: "2", "PYTHONPATH": str(shim)}
    )
    job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")  # 4 pages × 2 s: twice the lease

    job = JobsView(server).wait_status(job_id, {"done", "dead"}, timeout=120)

    assert job["status"] == "done" and job["attempts"] == 1, JobsView.error(job)
    assert not any("lease" in e["message"] for e in job["events"]), job["events"]
    assert worker.alive
