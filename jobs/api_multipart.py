"""Multipart uploads of large sources to S3 storage (client API, ``submit`` scope).

``POST /api/v1/blobs`` hands out one presigned PUT, which S3 caps at 5 GiB and which cannot
be resumed or parallelised; for big files the client asks here for presigned part URLs
instead, PUTs the parts in parallel and then asks the server to complete the upload. The
parts carry no checksum S3 could tie to the declared sha256, so completion re-reads the
object once and deletes it when its bytes do not match. The local backend answers 409:
its single signed PUT streams to disk and has no size limit of its own.
"""

import hashlib
import math

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Schema

from jobs import ingest, storage
from jobs.api import ERRORS, SUBMIT, Strict, router
from jobs.models import Blob

MiB = 1024 * 1024
MIN_PART, MAX_PART, MAX_PARTS = 5 * MiB, 5 * 1024 * MiB, 10_000


class MultipartIn(Strict):
    part_size: int = Field(16 * MiB, ge=MIN_PART, le=MAX_PART, description="Wished part size; raised if needed.")


class PartUrl(Schema):
    number: int
    url: str
    method: str
    headers: dict[str, str]


class MultipartOut(Schema):
    upload_id: str
    part_size: int
    parts: list[PartUrl]


class PartIn(Strict):
    number: int = Field(..., ge=1, le=MAX_PARTS)
    etag: str = Field(..., min_length=1, max_length=200)


class CompleteIn(Strict):
    upload_id: str = Field(..., min_length=1, max_length=1024)
    parts: list[PartIn] = Field(..., min_length=1, max_length=MAX_PARTS)


class AbortIn(Strict):
    upload_id: str = Field(..., min_length=1, max_length=1024)


class StoredOut(Schema):
    sha256: str
    size: int
    stored: bool


def _s3_blob(sha256: str) -> tuple[storage.S3Storage, Blob, str]:
    key = storage.source_key(sha256)
    backend = storage.backend()
    if not isinstance(backend, storage.S3Storage):
        raise storage.StorageError(
            "this server's storage takes single PUT uploads: use the URL from POST /api/v1/blobs", 409
        )
    blob = Blob.objects.filter(sha256=sha256).first()
    if blob is None:
        raise storage.StorageError(f"no blob {sha256}: declare it with POST /api/v1/blobs first", 404)
    return backend, blob, key


def _s3_call(what: str, call, **params) -> dict:
    from botocore.exceptions import ClientError

    try:
        return call(**params)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = 404 if code in ("NoSuchUpload", "NoSuchKey") else 400 if code.startswith("Invalid") else 502
        raise storage.StorageError(
            f"{what} failed: {exc.response.get('Error', {}).get('Message') or code}", status
        ) from exc


@router.post("blobs/{sha256}/multipart", auth=SUBMIT, response={200: MultipartOut, **ERRORS})
def start_multipart(request: HttpRequest, sha256: str, body: MultipartIn):
    """Start a multipart upload of a declared blob: one presigned PUT URL per part (send each part's ETag back)."""
    backend, blob, key = _s3_blob(sha256)
    if ingest.ensure_stored(blob):
        return 409, {"detail": f"blob {sha256} is already stored"}
    if blob.size > settings.MAX_UPLOAD_BYTES:
        return 422, {"detail": f"{blob.size} bytes exceeds BLOBFORGE_MAX_UPLOAD_BYTES ({settings.MAX_UPLOAD_BYTES})"}
    part_size = max(body.part_size, math.ceil(blob.size / MAX_PARTS))
    started = _s3_call(
        "starting the multipart upload",
        backend.client.create_multipart_upload,
        Bucket=backend.bucket,
        Key=key,
        ContentType="application/octet-stream",
    )
    upload_id = started["UploadId"]
    parts = []
    for number in range(1, math.ceil(blob.size / part_size) + 1):
        url = backend.client.generate_presigned_url(
            "upload_part",
            ExpiresIn=settings.SOURCE_URL_SECONDS,
            Params={"Bucket": backend.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
        )
        parts.append({"number": number, "url": url, "method": "PUT", "headers": {}})
    return {"upload_id": upload_id, "part_size": part_size, "parts": parts}


def _sha256_of(backend: storage.S3Storage, key: str) -> str:
    hasher = hashlib.sha256()
    body = _s3_call("reading the uploaded object", backend.client.get_object, Bucket=backend.bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(storage.CHUNK):
        hasher.update(chunk)
    return hasher.hexdigest()


@router.post("blobs/{sha256}/multipart/complete", auth=SUBMIT, response={200: StoredOut, **ERRORS})
def complete_multipart(request: HttpRequest, sha256: str, body: CompleteIn):
    """Assemble the parts, then check the object's size and sha256 (it is deleted when they do not match)."""
    backend, blob, key = _s3_blob(sha256)
    parts = [{"PartNumber": part.number, "ETag": part.etag} for part in sorted(body.parts, key=lambda p: p.number)]
    _s3_call(
        "completing the multipart upload",
        backend.client.complete_multipart_upload,
        Bucket=backend.bucket,
        Key=key,
        UploadId=body.upload_id,
        MultipartUpload={"Parts": parts},
    )
    size = backend.size_of(key)
    actual = _sha256_of(backend, key) if size == blob.size else None
    if actual != sha256:
        backend.delete(key)
        found = f"{size} bytes" if actual is None else f"sha256 {actual}"
        return 422, {"detail": f"uploaded object does not match blob {sha256} ({blob.size} bytes): got {found}"}
    Blob.objects.filter(pk=sha256).update(stored=True)
    return {"sha256": sha256, "size": blob.size, "stored": True}


@router.post("blobs/{sha256}/multipart/abort", auth=SUBMIT, response={200: StoredOut, **ERRORS})
def abort_multipart(request: HttpRequest, sha256: str, body: AbortIn):
    """Drop an unfinished multipart upload and the parts already sent."""
    backend, blob, key = _s3_blob(sha256)
    _s3_call(
        "aborting the multipart upload",
        backend.client.abort_multipart_upload,
        Bucket=backend.bucket,
        Key=key,
        UploadId=body.upload_id,
    )
    return {"sha256": sha256, "size": blob.size, "stored": blob.stored}
