"""A full disk, on the server's local storage or in a worker's work dir: a clear error, the job retried,
the worker alive, and the job done once there is room again.

The full disks are small tmpfs mounts (the tests need root to mount them and skip otherwise).
"""

import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.components.server import ServerProcess
from tests.components.worker import JobsView, ingest_one, wait_for

pytestmark = pytest.mark.slow

QUICK_RETRY = {"BLOBFORGE_LEASE_SECONDS": "6", "BLOBFORGE_HEARTBEAT_SECONDS": "1", "BLOBFORGE_RETRY_BASE_SECONDS": "0"}


@contextmanager
def tiny_disk(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write until the filesystem is full; returns the filler file (delete it to make room)."""
    filler = path / "filler"
    try:
        with filler.open("wb") as out:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
    except OSError:  # ENOSPC, from a write or from the close that flushes
        pass
    return filler


def failures(job: dict) -> list[str]:
    return [e["message"] for e in job["events"] if e["from_status"] == "running" and e["to_status"] == "pending"]


def test_full_local_storage_refuses_the_upload_with_507_and_the_job_is_retried(tmp_path, worker_factory, fixture_pdfs):
    server = ServerProcess(tmp_path / "server", QUICK_RETRY | {"BLOBFORGE_MAX_ATTEMPTS": "50"})
    with tiny_disk(server.data_dir / "storage", "2m") as storage:
        try:
            server.start()
            job_id = ingest_one(server, fixture_pdfs / "pdflatex-outline.pdf")
            filler = fill(storage)
            worker = worker_factory(server, "--converter", "pdfium", name="steady")
            view = JobsView(server)

            job = wait_for(lambda: failures(j := view.get(job_id)) and j, 120, "the upload to fail on the full disk")
            assert "507" in failures(job)[0] and "No space left" in failures(job)[0], failures(job)
            assert worker.alive
            assert job["status"] in ("pending", "running") and job["output"] is None

            filler.unlink()
            done = view.wait_status(job_id, {"done", "dead"}, timeout=120)
            assert done["status"] == "done" and done["attempts"] >= 2
            assert worker.alive
            assert '" 500 ' not in server.log(), "a full disk is a 507, never a 500"
        finally:
            server.stop(kill=True)


def test_full_worker_work_dir_fails_the_attempt_clearly_and_the_worker_carries_on(
    server_factory, worker_factory, fixture_pdfs
):
    # Immediate retries: enough attempts that the job is still retrying when the disk grows.
    server = server_factory(**QUICK_RETRY, BLOBFORGE_MAX_ATTEMPTS="1000")
    worker = worker_factory(server, "--converter", "pdfium", name="cramped", launch=False)
    work_dir = Path(worker.command[worker.command.index("--work-dir") + 1])
    with tiny_disk(work_dir, "64k"):
        worker.start().wait_ready()
        job_id = ingest_one(server, fixture_pdfs / "congress.pdf")  # ~190 KB: does not fit in 64 KB
        view = JobsView(server)

        job = wait_for(lambda: failures(j := view.get(job_id)) and j, 120, "the download to fail on the full disk")
        assert "No space left" in failures(job)[0], failures(job)
        assert worker.alive, worker.log()[-3000:]

        subprocess.run(["mount", "-o", "remount,size=64m", str(work_dir)], check=True)
        done = view.wait_status(job_id, {"done", "dead"}, timeout=120)
        assert done["status"] == "done", JobsView.error(done)
        assert worker.alive
