"""Complete-and-claim: ``complete`` with ``{"claim": {...}}`` also hands out the next job (one round trip less)."""

import hashlib

import pytest

from tests.protocol_client import Claimed, ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = [pytest.mark.postgres]


def submit(server, n: int) -> None:
    path = server.data_dir / f"doc{n}.pdf"
    path.write_bytes(tiny_pdf(n))
    server.manage("submit", str(path))


def complete_and_claim(worker: ProtocolWorker, job: Claimed, data: bytes):
    worker.upload_output(job, data).raise_for_status()
    output = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return worker.post(
        f"jobs/{job.id}/complete",
        {"lease": job.lease, "output": output, "result": {"pages": 1}, "claim": {"job_types": ["pdf"]}},
    )


def test_complete_with_claim_finishes_the_job_and_leases_the_next(server):
    submit(server, 1)
    submit(server, 2)
    worker = ProtocolWorker(server.base_url, *server.create_worker("chain"))
    first = worker.claim()
    data = tiny_output_zip()

    answer = complete_and_claim(worker, first, data)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "done"
    nxt = body["next"]
    assert nxt["job"]["id"] != first.id and nxt["lease"]["token"]
    assert nxt["job"]["source"]["url"].startswith("http")

    # The next job is really this worker's: it completes under the lease it was given.
    second = Claimed(nxt["job"]["id"], nxt["lease"]["token"], nxt["job"]["source"]["url"], nxt)
    last = complete_and_claim(worker, second, data)
    assert last.status_code == 200, last.text
    assert last.json() == {"status": "done", "next": None}, "an empty queue answers next: null, without waiting"
    assert worker.claim() is None


def test_complete_without_claim_answers_as_before(server):
    submit(server, 1)
    submit(server, 2)
    worker = ProtocolWorker(server.base_url, *server.create_worker("plain"))
    job = worker.claim()
    answer = worker.full_cycle(job, tiny_output_zip())
    assert answer.status_code == 200
    assert answer.json()["next"] is None
    assert worker.claim() is not None, "the second job was left for a separate claim"


def test_a_refused_complete_claims_nothing(server):
    submit(server, 1)
    submit(server, 2)
    worker = ProtocolWorker(server.base_url, *server.create_worker("late"))
    job = worker.claim()
    data = tiny_output_zip()
    output = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    answer = worker.post(
        f"jobs/{job.id}/complete", {"lease": job.lease, "output": output, "claim": {"job_types": ["pdf"]}}
    )
    assert answer.status_code == 422, "no output uploaded"
    assert "upload" in answer.json()["detail"]
    # Still holding the first job (one slot), the worker cannot claim; nothing was leased to it.
    assert worker.post("claim", {"job_types": ["pdf"]}).status_code == 409
