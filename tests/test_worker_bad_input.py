"""Bad documents end ``dead`` after exactly one attempt, with the cause named; the workers carry on."""

import hashlib
import json
import os

import pytest
import requests

from tests.components.worker import JobsView

pytestmark = pytest.mark.slow


def _queue_through_api(server, token_session, data: bytes, filename: str) -> int:
    """What a client does: declare the blob, upload its bytes, ask for a job."""
    sha256 = hashlib.sha256(data).hexdigest()
    declared = token_session.post(
        f"{server.base_url}/api/v1/blobs", json={"sha256": sha256, "size": len(data), "filename": filename}, timeout=10
    )
    declared.raise_for_status()
    upload = declared.json()["upload"]
    put = requests.request(upload["method"], upload["url"], data=data, headers=upload["headers"], timeout=10)
    assert put.status_code in (200, 201), put.text
    created = token_session.post(
        f"{server.base_url}/api/v1/jobs", json={"sha256": sha256, "filename": filename}, timeout=10
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _queue_zero_byte_file(server) -> int:
    """A zero-byte object cannot be uploaded by a client (sizes start at 1), but storage can hold one."""
    code = (
        "import hashlib, io\n"
        "from jobs import ingest, queue, storage\n"
        "from jobs.models import Blob\n"
        "sha = hashlib.sha256(b'').hexdigest()\n"
        "blob, _ = ingest.record_blob(sha, 0, 'empty.pdf')\n"
        "storage.backend().save(storage.source_key(sha), io.BytesIO(b''), sha256=sha)\n"
        "Blob.objects.filter(pk=sha).update(stored=True)\n"
        "print(queue.submit(blob, filename='empty.pdf', actor='test')[0].pk)\n"
    )
    return int(server.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


def test_bad_documents_die_after_one_attempt_and_workers_carry_on(server, worker_factory, fixture_pdfs, tmp_path):
    workers = [worker_factory(server, "--converter", "pdfium", name=f"bad-{i}") for i in (1, 2)]
    view = JobsView(server)
    bad = tmp_path / "bad"
    bad.mkdir()
    example = (fixture_pdfs / "example.pdf").read_bytes()
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(4000) + b"\n%%EOF\n")
    (bad / "truncated.pdf").write_bytes(example[: len(example) * 2 // 3])
    (bad / "encrypted.pdf").write_bytes((fixture_pdfs / "encrypted-file.pdf").read_bytes())
    server.manage("ingest", str(bad), "--json")
    by_name = {job["filename"]: job["id"] for job in view.all()}
    by_name["notes.pdf"] = _queue_through_api(server, view.session, b"just some notes, not a PDF\n", "notes.pdf")
    by_name["empty.pdf"] = _queue_zero_byte_file(server)

    causes = {
        "corrupt.pdf": "corrupt: PDFium cannot parse",
        "truncated.pdf": "truncated: no %%EOF",
        "encrypted.pdf": "encrypted: password-protected PDF",
        "notes.pdf": "not a PDF",
        "empty.pdf": "empty: zero-byte file",
    }
    assert set(by_name) == set(causes)
    for name, job_id in by_name.items():
        job = view.wait_status(job_id, {"dead", "done"}, timeout=60)
        assert job["status"] == "dead", f"{name}: {job['status']}"
        assert job["attempts"] == 1, name
        assert causes[name] in view.error(job), f"{name}: {view.error(job)}"

    assert all(worker.alive for worker in workers)
    good = json.loads(server.manage("ingest", str(fixture_pdfs / "crazyones.pdf"), "--json").stdout.splitlines()[-1])
    assert good["jobs_created"] == 1
    job_id = next(job["id"] for job in view.all() if job["filename"] == "crazyones.pdf")
    assert view.wait_status(job_id, {"done", "dead"}, timeout=60)["status"] == "done"
