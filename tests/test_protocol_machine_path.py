"""Worker and signed-storage requests take the lean ASGI path (blobforge_site.asgi.MachineHandler).

It keeps SecurityMiddleware's headers and Content-Length on every answer, refusals and
empty answers included, and serves requests from several clients at once on the
threads it reuses.
"""

import concurrent.futures
import json

import pytest
import requests

from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = [pytest.mark.postgres]


def assert_secure_headers(response: requests.Response) -> None:
    """SecurityMiddleware's headers, and a Content-Length (keep-alive clients need it, a 204 included)."""
    assert response.headers.get("Content-Length") == str(len(response.content)), response.headers
    assert "Transfer-Encoding" not in response.headers, response.headers
    assert response.headers.get("X-Content-Type-Options") == "nosniff", response.headers
    assert response.headers.get("Referrer-Policy") == "same-origin", response.headers
    assert response.headers.get("Cross-Origin-Opener-Policy") == "same-origin", response.headers


def test_machine_answers_carry_the_security_headers(server):
    path = server.data_dir / "doc.pdf"
    path.write_bytes(tiny_pdf(1))
    server.manage("submit", str(path))
    worker = ProtocolWorker(server.base_url, *server.create_worker("headers"))

    refused = requests.post(f"{server.base_url}/api/v1/worker/claim", json={}, timeout=10)
    assert refused.status_code == 401
    assert_secure_headers(refused)
    job = worker.claim()
    source = requests.get(job.source_url, timeout=10)
    assert source.content == tiny_pdf(1)
    assert_secure_headers(source)
    upload = worker.upload_output(job, tiny_output_zip())
    assert upload.status_code in (200, 201)
    assert_secure_headers(upload)
    done = worker.complete(job, tiny_output_zip())
    assert done.status_code == 200
    assert_secure_headers(done)
    empty = worker.post("claim", {"job_types": ["pdf"]})
    assert empty.status_code == 204
    assert_secure_headers(empty)


def test_many_workers_at_once_each_get_their_own_answer(server):
    for n in range(24):
        (server.data_dir / "many").mkdir(exist_ok=True)
        (server.data_dir / "many" / f"doc{n}.pdf").write_bytes(tiny_pdf(n))
    server.manage("ingest", str(server.data_dir / "many"))
    credentials = json.loads(
        server.shell(
            "import json\nfrom workers import actions\n"
            "print(json.dumps([(w.name, s) for w, s in (actions.create(f'many-{n}') for n in range(24))]))"
        )
    )
    workers = [ProtocolWorker(server.base_url, name, secret) for name, secret in credentials]

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        claimed = list(pool.map(lambda worker: worker.claim(), workers))
        beats = list(
            pool.map(lambda pair: pair[0].heartbeat(pair[1], stage="converting"), zip(workers, claimed, strict=True))
        )

    assert len({job.id for job in claimed}) == 24, "every worker got a different job"
    assert all(beat.status_code == 200 for beat in beats), [beat.text for beat in beats if beat.status_code != 200]
