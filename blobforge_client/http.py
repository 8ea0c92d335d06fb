"""The client API over HTTP: JSON calls with the Bearer token, and uploads/downloads to signed URLs.

Signed URLs (S3 presigned or the server's own ``/storage/…``) carry their own authority, so
they are fetched without the token: S3 refuses a request that carries two kinds of auth.
"""

import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import requests

from blobforge_client import __version__

RETRIES = 3
TIMEOUT = (10, 120)


class ApiError(Exception):
    """The server answered with an error; ``status`` is the HTTP status, ``detail`` its message."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{detail} (HTTP {status})")
        self.status, self.detail = status, detail

    @property
    def is_auth(self) -> bool:
        return self.status in (401, 403)


class ConnectionProblem(Exception):
    """The server (or a storage URL) could not be reached at all."""


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail") or response.reason)
    except ValueError:
        return response.text[:300].strip() or response.reason or "error"


class Client:
    """One per command; safe to share between threads (each thread gets its own sessions)."""

    def __init__(self, server_url: str, token: str):
        self.server_url, self.token = server_url.rstrip("/"), token
        self._local = threading.local()

    def _sessions(self) -> tuple[requests.Session, requests.Session]:
        if not hasattr(self._local, "api"):
            api, plain = requests.Session(), requests.Session()
            api.headers.update(
                {"Authorization": f"Bearer {self.token}", "User-Agent": f"blobforge-client/{__version__}"}
            )
            plain.headers["User-Agent"] = f"blobforge-client/{__version__}"
            self._local.api, self._local.plain = api, plain
        return self._local.api, self._local.plain

    def _send(
        self,
        session: requests.Session,
        method: str,
        url: str,
        *,
        rewind: "_Window | None" = None,
        **kwargs,
    ) -> requests.Response:
        """Send with a few retries on connection errors and 5xx (every call here is idempotent)."""
        timeout = kwargs.pop("timeout", TIMEOUT)
        for attempt in range(RETRIES):
            if rewind is not None:
                rewind.rewind()
            try:
                response = session.request(method, url, timeout=timeout, **kwargs)
            except requests.ConnectionError as exc:
                if attempt == RETRIES - 1:
                    raise ConnectionProblem(f"cannot reach {url.split('?')[0]}: {exc}") from exc
            except requests.Timeout as exc:
                if attempt == RETRIES - 1:
                    raise ConnectionProblem(f"{url.split('?')[0]} did not answer in time") from exc
            else:
                if response.status_code < 500 or attempt == RETRIES - 1:
                    return response
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def call(
        self, method: str, path: str, *, json: Any = None, params: dict | None = None, timeout: float | tuple = TIMEOUT
    ) -> Any:
        """A client-API call (``path`` under /api/v1/); returns the decoded JSON or raises ApiError."""
        api, _ = self._sessions()
        response = self._send(
            api, method, f"{self.server_url}/api/v1/{path.lstrip('/')}", json=json, params=params, timeout=timeout
        )
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json() if response.content else None

    def get_url(self, url: str, **params) -> Any:
        """GET an absolute URL the server handed out (a ``next`` page link)."""
        api, _ = self._sessions()
        response = self._send(api, "GET", url, params=params or None)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json()

    def upload(self, signed: dict, path: Path, offset: int = 0, length: int | None = None) -> requests.Response:
        """PUT ``length`` bytes of ``path`` from ``offset`` to a signed URL; raises ApiError when refused."""
        _, plain = self._sessions()
        size = path.stat().st_size - offset if length is None else length
        headers = dict(signed.get("headers") or {}) | {"Content-Length": str(size)}
        with path.open("rb") as handle:
            body = _Window(handle, offset, size)
            response = self._send(
                plain,
                signed.get("method", "PUT"),
                signed["url"],
                data=body,
                headers=headers,
                rewind=body,
                timeout=(10, 600),
            )
        if response.status_code >= 400:
            raise ApiError(response.status_code, f"upload refused: {_detail(response)}")
        return response

    def download(self, url: str, target: BinaryIO) -> int:
        """Stream a signed GET into ``target``; returns the byte count."""
        _, plain = self._sessions()
        with plain.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code >= 400:
                raise ApiError(response.status_code, f"download refused: {_detail(response)}")
            total = 0
            for chunk in response.iter_content(1024 * 1024):
                target.write(chunk)
                total += len(chunk)
        return total


class _Window:
    """A read-only view of ``size`` bytes of a file from ``offset`` (one multipart part, or all of it)."""

    def __init__(self, handle: BinaryIO, offset: int, size: int):
        self.handle, self.start, self.size = handle, offset, size
        self.rewind()

    def rewind(self) -> None:
        """Back to the window's first byte (before each attempt of a retried upload)."""
        self.handle.seek(self.start)
        self.left = self.size

    def __len__(self) -> int:
        return self.size

    def read(self, amount: int = -1) -> bytes:
        if amount < 0 or amount > self.left:
            amount = self.left
        data = self.handle.read(amount)
        self.left -= len(data)
        return data
