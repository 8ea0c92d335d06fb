"""Object storage through the same tests for both backends: local (server-signed) and S3 (SeaweedFS)."""

import hashlib
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.protocol_client import ProtocolWorker, tiny_output_zip

PDF = b"%PDF-1.7\n" + b"storage test payload " * 500 + b"\n%%EOF\n"


@pytest.fixture(params=["local", "s3"])
def any_server(request):
    """The server on each storage backend (the S3 one needs SeaweedFS, started on demand)."""
    return request.getfixturevalue("server" if request.param == "local" else "s3_server")


def declare(server, token: str, data: bytes, filename: str = "doc.pdf") -> dict:
    response = requests.post(
        server.base_url + "/api/v1/blobs",
        json={
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "filename": filename,
            "path": f"in/{filename}",
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def put(spec: dict, data: bytes, url: str | None = None) -> requests.Response:
    return requests.request(spec["method"], url or spec["url"], data=data, headers=spec["headers"], timeout=30)


def other_key(url: str) -> str:
    """The same signed URL pointed at a different object key."""
    parts = urlsplit(url)
    path = parts.path.replace(parts.path.rsplit("/", 1)[-1], "f" * 64 + ".pdf")
    return urlunsplit(parts._replace(path=path))


def test_presigned_upload_then_worker_downloads_the_same_bytes(any_server):
    token = any_server.create_token("submit,read")
    declared = declare(any_server, token, PDF)
    assert declared["stored"] is False and declared["upload"]["method"] == "PUT"
    assert put(declared["upload"], PDF).status_code in (200, 201)
    assert declare(any_server, token, PDF)["stored"] is True, "a second declaration needs no upload"

    created = requests.post(
        any_server.base_url + "/api/v1/jobs",
        json={"sha256": declared["sha256"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201

    worker = ProtocolWorker(any_server.base_url, *any_server.create_worker("fetcher"))
    job = worker.claim()
    assert requests.get(job.source_url, timeout=30).content == PDF

    output = tiny_output_zip("# hello\n")
    assert worker.full_cycle(job, output).status_code == 200
    detail = requests.get(
        f"{any_server.base_url}/api/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert detail["status"] == "done"
    assert requests.get(detail["output"]["url"], timeout=30).content == output


def test_bytes_that_do_not_match_the_sha256_are_refused(any_server):
    token = any_server.create_token("submit")
    declared = declare(any_server, token, PDF)
    forged = PDF.replace(b"storage", b"STORAGE")
    assert len(forged) == len(PDF)
    response = put(declared["upload"], forged)
    assert response.status_code in (400, 422), response.text
    assert declare(any_server, token, PDF)["stored"] is False, "nothing was stored"


def test_a_signed_url_cannot_be_reused_for_another_key(any_server):
    token = any_server.create_token("submit")
    declared = declare(any_server, token, PDF)
    assert put(declared["upload"], PDF, url=other_key(declared["upload"]["url"])).status_code == 403


def test_a_signed_url_refuses_a_larger_body(any_server):
    token = any_server.create_token("submit")
    declared = declare(any_server, token, PDF)
    response = put(declared["upload"], PDF + b"extra")
    assert response.status_code in (400, 403, 413)


def test_upload_url_is_for_this_jobs_output_key_only(any_server):
    any_server.manage("submit", str(_write(any_server, PDF)))
    worker = ProtocolWorker(any_server.base_url, *any_server.create_worker("uploader"))
    job = worker.claim()
    spec = worker.post(f"jobs/{job.id}/upload-url", {"lease": job.lease, "size": 4}).json()
    elsewhere = urlsplit(spec["url"])._replace(path=urlsplit(spec["url"]).path.replace("outputs/pdf/", "sources/ab/"))
    assert put(spec, b"evil", url=urlunsplit(elsewhere)).status_code == 403


def test_expired_urls_are_refused(any_server):
    """Signed with a one-second life in the server's own way; refused once that second has passed."""
    any_server.manage("submit", str(_write(any_server, PDF)))
    url = any_server.shell(
        "from jobs import storage; from jobs.models import Blob;"
        "b = Blob.objects.get(); print(storage.backend().presigned_get(storage.source_key(b.sha256), 1).url)",
    ).strip()
    url = url if "://" in url else any_server.base_url + url
    deadline = time.monotonic() + 10
    status = requests.get(url, timeout=10).status_code
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.25)  # waiting for time itself to pass: the URL's expiry is the event
        status = requests.get(url, timeout=10).status_code
    assert status == 403


def test_oversized_upload_is_refused_before_it_is_stored(server_factory):
    server = server_factory(BLOBFORGE_MAX_UPLOAD_BYTES="4096")
    token = server.create_token("submit")
    big = b"%PDF-1.4\n" + b"x" * 10_000
    response = requests.post(
        server.base_url + "/api/v1/blobs",
        json={"sha256": hashlib.sha256(big).hexdigest(), "size": len(big)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422 and "MAX_UPLOAD" in response.json()["detail"]
    # A forged URL-level attempt never reaches storage either: the ASGI guard answers from Content-Length.
    guard = requests.put(server.base_url + "/storage/sources/aa/" + "a" * 64 + ".pdf?exp=1&sig=x", data=big)
    assert guard.status_code == 413
    assert not list((server.data_dir / "storage").rglob("*.pdf"))


def test_oversized_json_body_is_413_not_500(server):
    token = server.create_token("submit")
    response = requests.post(
        server.base_url + "/api/v1/jobs",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["detail"]


def _write(server, data: bytes):
    path = server.data_dir / "upload-me.pdf"
    path.write_bytes(data)
    return path
