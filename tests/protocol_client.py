"""A minimal worker-protocol driver for tests that simulate workers over real HTTP."""

import hashlib
import io
import zipfile
from dataclasses import dataclass

import requests


@dataclass
class Claimed:
    id: int
    lease: str
    source_url: str
    body: dict


class ProtocolWorker:
    """Speaks the worker protocol with ``requests``, one call per method."""

    def __init__(self, base_url: str, name: str, secret: str):
        self.base = base_url.rstrip("/") + "/api/v1/worker/"
        self.http = requests.Session()
        self.http.headers.update({"X-Worker-ID": name, "X-Worker-Secret": secret})

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.http.post(self.base + path, json=body or {}, timeout=30)

    def register(self) -> dict:
        response = self.post(
            "register", {"hostname": "test", "version": "test", "capabilities": {"job_types": ["pdf"]}}
        )
        response.raise_for_status()
        return response.json()

    def claim(self, wait: float = 0) -> Claimed | None:
        response = self.post("claim", {"job_types": ["pdf"], "wait": wait})
        if response.status_code == 204:
            return None
        response.raise_for_status()
        body = response.json()
        return Claimed(body["job"]["id"], body["lease"]["token"], body["job"]["source"]["url"], body)

    def heartbeat(self, job: Claimed, **progress) -> requests.Response:
        return self.post(f"jobs/{job.id}/heartbeat", {"lease": job.lease, **progress})

    def upload_output(self, job: Claimed, data: bytes) -> requests.Response:
        signed = self.post(f"jobs/{job.id}/upload-url", {"lease": job.lease, "size": len(data)})
        signed.raise_for_status()
        spec = signed.json()
        return requests.request(spec["method"], spec["url"], data=data, headers=spec["headers"], timeout=30)

    def complete(self, job: Claimed, data: bytes) -> requests.Response:
        output = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        return self.post(f"jobs/{job.id}/complete", {"lease": job.lease, "output": output, "result": {"pages": 1}})

    def fail(self, job: Claimed, error: str, retryable: bool = True) -> requests.Response:
        return self.post(f"jobs/{job.id}/fail", {"lease": job.lease, "error": error, "retryable": retryable})

    def full_cycle(self, job: Claimed, data: bytes) -> requests.Response:
        """Heartbeat, upload, complete: what a real worker does after a claim."""
        self.heartbeat(job, stage="converting", pages_done=1, pages_total=1).raise_for_status()
        self.upload_output(job, data).raise_for_status()
        return self.complete(job, data)


def tiny_output_zip(text: str = "# converted\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("content.md", text)
        archive.writestr("meta.json", "{}")
    return buffer.getvalue()


def tiny_pdf(n: int) -> bytes:
    """Distinct minimal bytes that ingest recognises as a PDF (content sniffing, not validity)."""
    return b"%PDF-1.4\n% blobforge test document " + str(n).encode() + b"\n%%EOF\n"
