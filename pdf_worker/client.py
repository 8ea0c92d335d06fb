"""The worker protocol over HTTP (``/api/v1/worker/``), and byte transfers to signed storage URLs.

Transient failures (no connection, timeouts, 5xx, 429) are retried with capped
exponential backoff for as long as the caller's ``keep_trying()`` says so, typically
"while our lease lasts"; refusals (other 4xx) raise ``ProtocolError`` at once.
"""

import hashlib
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import requests

from pdf_worker import __version__

log = logging.getLogger("pdf_worker.client")
CHUNK = 1024 * 1024
BACKOFF_MAX = 5.0
TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class ProtocolError(Exception):
    """The server (or storage) refused the request; ``status`` and ``detail`` say why."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class Unreachable(Exception):
    """Transient failures went on longer than the caller was willing to wait."""


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text[:500])
    except ValueError:
        return response.text[:500] or response.reason


class Retrier:
    """Capped exponential backoff with jitter; logs an outage once, and its end."""

    def __init__(self, what: str, keep_trying: Callable[[], bool]):
        self.what, self.keep_trying = what, keep_trying
        self.failures = 0

    def failed(self, why: str) -> None:
        self.failures += 1
        if not self.keep_trying():
            raise Unreachable(f"{self.what}: {why}")
        delay = min(BACKOFF_MAX, 0.5 * 2 ** (self.failures - 1)) * random.uniform(0.7, 1.0)
        (log.warning if self.failures == 1 else log.debug)("%s failed (%s); retrying in %.1fs", self.what, why, delay)
        time.sleep(delay)

    def succeeded(self) -> None:
        if self.failures:
            log.info("%s succeeded after %d retries", self.what, self.failures)


class Client:
    def __init__(self, server_url: str, worker_id: str, secret: str):
        self.base = server_url.rstrip("/") + "/api/v1/worker/"
        self.session = requests.Session()
        self.session.headers.update(
            {
                "X-Worker-ID": worker_id,
                "X-Worker-Secret": secret,
                "User-Agent": f"blobforge-worker/{__version__}",
            }
        )
        self.storage = requests.Session()  # no worker credentials towards storage

    def call(
        self,
        path: str,
        body: dict | None = None,
        *,
        keep_trying: Callable[[], bool] = lambda: False,
        timeout: float = 30,
    ) -> dict | None:
        """POST JSON; returns the answer (None for 204)."""
        retrier = Retrier(f"POST {path}", keep_trying)
        while True:
            try:
                response = self.session.post(self.base + path, json=body or {}, timeout=timeout)
            except requests.RequestException as exc:
                retrier.failed(type(exc).__name__)
                continue
            if response.status_code in TRANSIENT_STATUS:
                retrier.failed(f"HTTP {response.status_code}")
                continue
            retrier.succeeded()
            if response.status_code == 204:
                return None
            if response.status_code >= 400:
                raise ProtocolError(response.status_code, _detail(response))
            return response.json()

    def download(
        self,
        url: str,
        dest: Path,
        *,
        sha256: str,
        size: int,
        keep_trying: Callable[[], bool],
        should_stop: Callable[[], str | None],
    ) -> None:
        """Stream ``url`` to ``dest``, verifying size and sha256 (ValueError on a mismatch)."""
        retrier = Retrier("source download", keep_trying)
        while True:
            try:
                hasher, written = hashlib.sha256(), 0
                with self.storage.get(url, stream=True, timeout=60) as response:
                    if response.status_code in TRANSIENT_STATUS:
                        retrier.failed(f"HTTP {response.status_code}")
                        continue
                    if response.status_code >= 400:
                        raise ProtocolError(response.status_code, _detail(response))
                    with dest.open("wb") as out:
                        for chunk in response.iter_content(CHUNK):
                            if should_stop():
                                return
                            hasher.update(chunk)
                            written += len(chunk)
                            out.write(chunk)
            except requests.RequestException as exc:
                retrier.failed(type(exc).__name__)
                continue
            retrier.succeeded()
            if written != size or hasher.hexdigest() != sha256:
                raise ValueError(
                    f"downloaded source does not match: got {written} bytes with sha256 {hasher.hexdigest()}, "
                    f"expected {size} bytes with sha256 {sha256}"
                )
            return

    def upload(self, signed: dict, path: Path) -> None:
        """One PUT of ``path`` to a signed URL; transient failures raise requests errors for the caller."""
        with path.open("rb") as body:
            response = self.storage.request(
                signed.get("method", "PUT"), signed["url"], data=body, headers=signed.get("headers") or {}, timeout=300
            )
        if response.status_code in TRANSIENT_STATUS:
            raise requests.ConnectionError(f"storage answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ProtocolError(response.status_code, _detail(response))
