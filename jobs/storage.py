"""Content-addressed object storage with short-lived, one-key URLs.

Two backends share one interface so workers and clients see one protocol:

* ``LocalStorage`` (embedded default): files under ``BLOBFORGE_DATA_DIR/storage``; the
  server itself serves GET/PUT at ``/storage/<key>`` for URLs it signed (HMAC over
  method, key, expiry, size cap, expected sha256 and lease).
* ``S3Storage``: django-storages/boto3; URLs are S3 presigned URLs.

Keys are built here only, from a validated sha256 and job type, so no caller can ask
for a URL to anything else in the bucket.
"""

import base64
import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, BinaryIO
from urllib.parse import quote, urlencode

from django.conf import settings

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
JOB_TYPE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
CHUNK = 1024 * 1024


class StorageError(Exception):
    """Storage refused or failed; ``status_code`` for HTTP callers."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def _prefixed(key: str) -> str:
    return f"{settings.STORAGE_PREFIX}/{key}" if settings.STORAGE_PREFIX else key


def source_key(sha256: str) -> str:
    if not SHA256_RE.match(sha256):
        raise StorageError("sha256 must be 64 lowercase hex characters")
    return _prefixed(f"sources/{sha256[:2]}/{sha256}.pdf")


def output_key(job_type: str, sha256: str) -> str:
    if not JOB_TYPE_RE.match(job_type) or not SHA256_RE.match(sha256):
        raise StorageError("invalid job type or sha256")
    return _prefixed(f"outputs/{job_type}/{sha256}.zip")


@dataclass
class SignedRequest:
    """What a client needs to move bytes: a URL, the method and headers to send."""

    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: float = 0.0

    def as_dict(self) -> dict:
        return {
            "url": self.url,
            "method": self.method,
            "headers": self.headers,
            "expires_in": int(self.expires_at - time.time()),
        }


class LocalStorage:
    """Files under the data dir; URLs are signed by this server and served by ``jobs.views``."""

    name = "local"

    def __init__(self, root: Path):
        self.root = root
        self._inside = str(root.resolve()) + os.sep

    def path(self, key: str) -> Path:
        """The file for ``key``; a key that would leave the root (``..``, absolute) is refused.

        String arithmetic instead of ``Path.resolve``: one lexical check per call rather
        than an ``lstat`` per path component (nothing but this class writes under the root,
        so there are no symlinks to follow).
        """
        target = os.path.normpath(self._inside + key)
        if not target.startswith(self._inside):
            raise StorageError("key outside the storage root", 400)
        return Path(target)

    def size_of(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, key: str) -> IO[bytes]:
        return self.path(key).open("rb")

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def save(self, key: str, stream: BinaryIO, *, max_size: int | None = None, sha256: str | None = None) -> int:
        """Stream into place atomically; refuse more than ``max_size`` bytes or a sha256 mismatch."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.part")
        hasher = hashlib.sha256()
        written = 0
        try:
            with partial.open("wb") as out:
                while chunk := stream.read(CHUNK):
                    written += len(chunk)
                    if max_size is not None and written > max_size:
                        raise StorageError(f"body is larger than the {max_size} bytes this URL allows", 413)
                    hasher.update(chunk)
                    out.write(chunk)
            if sha256 and hasher.hexdigest() != sha256:
                raise StorageError(f"bytes do not match sha256 {sha256} (got {hasher.hexdigest()})", 422)
            os.replace(partial, target)
        except OSError as exc:
            raise StorageError(f"local storage could not write {key}: {exc.strerror or exc}", 507) from exc
        finally:
            partial.unlink(missing_ok=True)
        return written

    # --- signed URLs ---
    @staticmethod
    def _signature(method: str, key: str, expires: int, max_size: int, sha256: str, lease: str) -> str:
        secret = hashlib.sha256(b"blobforge-storage-url:" + settings.SECRET_KEY.encode()).digest()
        message = "\n".join([method, key, str(expires), str(max_size), sha256, lease]).encode()
        return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode().rstrip("=")

    def _sign(
        self, method: str, key: str, seconds: int, *, max_size: int = 0, sha256: str = "", lease: str = ""
    ) -> SignedRequest:
        expires = int(time.time()) + seconds
        params = {"exp": expires}
        if max_size:
            params["max"] = max_size
        if sha256:
            params["sha256"] = sha256
        if lease:
            params["lease"] = lease
        params["sig"] = self._signature(method, key, expires, max_size, sha256, lease)
        headers = {"Content-Type": "application/octet-stream"} if method == "PUT" else {}
        return SignedRequest(f"/storage/{quote(key)}?{urlencode(params)}", method, headers, expires)

    def verify(self, method: str, key: str, params: dict) -> dict:
        """Check a signed URL's parameters; return them parsed or raise StorageError (403)."""
        try:
            expires = int(params.get("exp", ""))
            max_size = int(params.get("max", "0"))
        except ValueError:
            raise StorageError("malformed signed URL", 403) from None
        sha256, lease = params.get("sha256", ""), params.get("lease", "")
        expected = self._signature(method, key, expires, max_size, sha256, lease)
        if not hmac.compare_digest(expected, params.get("sig", "")):
            raise StorageError("URL signature does not match this key and method", 403)
        if expires < time.time():
            raise StorageError("URL has expired", 403)
        return {"max_size": max_size, "sha256": sha256, "lease": lease}

    def presigned_get(self, key: str, seconds: int) -> SignedRequest:
        return self._sign("GET", key, seconds)

    def presigned_put(self, key: str, size: int, seconds: int, *, sha256: str = "", lease: str = "") -> SignedRequest:
        return self._sign("PUT", key, seconds, max_size=size, sha256=sha256, lease=lease)


class S3Storage:
    """Any S3-compatible store through django-storages; URLs are presigned by boto3."""

    name = "s3"

    def __init__(self):
        from botocore.config import Config
        from storages.backends.s3 import S3Storage as DjangoS3Storage

        self.files = DjangoS3Storage(
            bucket_name=settings.S3_BUCKET,
            endpoint_url=settings.S3_ENDPOINT or None,
            region_name=settings.S3_REGION,
            access_key=settings.S3_ACCESS_KEY or None,
            secret_key=settings.S3_SECRET_KEY or None,
            addressing_style="path",
            signature_version="s3v4",
            file_overwrite=True,
            default_acl=None,
            querystring_auth=True,
            client_config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        self.client = self.files.connection.meta.client
        self.bucket = settings.S3_BUCKET

    def size_of(self, key: str) -> int | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"object storage error: {exc}", 502) from exc
        except BotoCoreError as exc:  # unreachable or timing out: an outage the caller should retry, not a 500
            raise StorageError(f"object storage unavailable: {exc}", 503) from exc

    def open(self, key: str) -> IO[bytes]:
        return self.files.open(key, "rb")

    def delete(self, key: str) -> None:
        self.files.delete(key)

    def save(self, key: str, stream: BinaryIO, *, max_size: int | None = None, sha256: str | None = None) -> int:
        """Upload (multipart for large files via boto3's transfer manager)."""
        counted = _CountingReader(stream, max_size)
        self.client.upload_fileobj(counted, self.bucket, key)
        if sha256 and counted.hexdigest() != sha256:
            self.delete(key)
            raise StorageError(f"bytes do not match sha256 {sha256}", 422)
        return counted.count

    def presigned_get(self, key: str, seconds: int) -> SignedRequest:
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
        )
        return SignedRequest(url, "GET", {}, time.time() + seconds)

    def presigned_put(self, key: str, size: int, seconds: int, *, sha256: str = "", lease: str = "") -> SignedRequest:
        """Presigned PUT with the exact Content-Length signed (S3 refuses another size).

        With ``sha256`` the x-amz-checksum-sha256 header is signed too, so S3 itself
        refuses bytes that do not match the declared digest.
        """
        params = {"Bucket": self.bucket, "Key": key, "ContentLength": size, "ContentType": "application/octet-stream"}
        headers = {"Content-Type": "application/octet-stream"}
        if sha256:
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
            params["ChecksumSHA256"] = checksum
            headers["x-amz-checksum-sha256"] = checksum
        url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=seconds)
        return SignedRequest(url, "PUT", headers, time.time() + seconds)


class _CountingReader:
    def __init__(self, stream: BinaryIO, max_size: int | None):
        self.stream, self.max_size, self.count = stream, max_size, 0
        self.hasher = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.count += len(chunk)
        if self.max_size is not None and self.count > self.max_size:
            raise StorageError(f"body is larger than {self.max_size} bytes", 413)
        self.hasher.update(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self.hasher.hexdigest()


@cache
def backend() -> LocalStorage | S3Storage:
    """The configured backend (one per process)."""
    if settings.STORAGE_BACKEND == "s3":
        return S3Storage()
    return LocalStorage(Path(settings.LOCAL_STORAGE_DIR))


def reset_backend() -> None:
    """Forget the cached backend (tests switch between backends)."""
    backend.cache_clear()
