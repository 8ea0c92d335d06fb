"""The worker protocol under ``/api/v1/worker/``: thin views over ``jobs.queue``."""

import asyncio
import time
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict

from blobforge_site.schemas import ERRORS, Strict
from jobs import queue, storage
from jobs.api_common import absolute
from workers import actions
from workers.auth import WorkerAuth
from workers.models import Worker

router = Router(auth=WorkerAuth(), tags=["worker protocol"])

LeaseToken = Field(..., min_length=1, max_length=64, description="The lease token from claim.")


class GpuInfo(Schema):
    index: str = Field(..., max_length=16)
    name: str | None = Field(None, max_length=200)
    memory_mb: int | None = Field(None, ge=0)


class Capabilities(Schema):
    model_config = ConfigDict(extra="allow")
    job_types: list[str] = Field(default_factory=lambda: ["pdf"], max_length=16)
    gpu: str | None = Field(None, max_length=200)
    converter: str = Field("", max_length=64)
    slots: int = Field(1, ge=1, le=64)
    device: str = Field("", max_length=16, description="cuda or cpu")
    gpu_memory_mb: int | None = Field(None, ge=0, description="memory of the first GPU, MiB")
    gpus: list[GpuInfo] = Field(default_factory=list, max_length=64, description="every GPU the slots are pinned to")


class RegisterIn(Strict):
    hostname: str = Field("", max_length=255)
    version: str = Field("", max_length=64)
    capabilities: Capabilities = Field(default_factory=Capabilities)


class PollOut(Schema):
    wait_max: int
    idle_backoff_max: int


class RegisterOut(Schema):
    worker: str
    heartbeat_interval: int
    lease_seconds: int
    poll: PollOut
    released: int = Field(description="Jobs this worker held from an earlier run, now given back.")


class ClaimIn(Strict):
    job_types: list[str] = Field(default_factory=lambda: ["pdf"], min_length=1, max_length=16)
    wait: float = Field(0, ge=0, le=60, description="Seconds to wait for a job (capped by the server).")


class SourceOut(Schema):
    sha256: str
    size: int
    filename: str
    url: str


class ClaimedJob(Schema):
    id: int
    type: str
    priority: int
    attempt: int
    max_attempts: int
    source: SourceOut


class LeaseOut(Schema):
    token: str
    expires_at: datetime
    seconds: int


class ClaimOut(Schema):
    job: ClaimedJob
    lease: LeaseOut


class HeartbeatIn(Strict):
    lease: str = LeaseToken
    stage: str = Field("", max_length=32)
    pages_done: int | None = Field(None, ge=0, le=10_000_000)
    pages_total: int | None = Field(None, ge=0, le=10_000_000)


class HeartbeatOut(Schema):
    lease_expires_at: datetime | None
    cancel: bool


class UploadUrlIn(Strict):
    lease: str = LeaseToken
    size: int = Field(..., ge=1, description="Exact size in bytes of the zip to upload.")


class SignedOut(Schema):
    url: str
    method: str
    headers: dict[str, str]
    expires_in: int


class OutputIn(Strict):
    size: int = Field(..., ge=1)
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$")


class ClaimNextIn(Strict):
    job_types: list[str] = Field(default_factory=lambda: ["pdf"], min_length=1, max_length=16)


class CompleteIn(Strict):
    lease: str = LeaseToken
    output: OutputIn
    result: dict[str, Any] = Field(default_factory=dict)
    claim: ClaimNextIn | None = Field(
        None,
        description="Also claim the next job in the same request (never waits); "
        "saves a round trip per job when jobs are short.",
    )


class StatusOut(Schema):
    status: str


class CompleteOut(StatusOut):
    next: ClaimOut | None = Field(None, description="With ``claim``: the next job, or null when none is ready.")


class FailIn(Strict):
    lease: str = LeaseToken
    error: str = Field(..., min_length=1, max_length=100_000)
    retryable: bool = True


class FailOut(Schema):
    status: str
    next_attempt_at: datetime | None


class ReleaseIn(Strict):
    lease: str = LeaseToken
    reason: str = Field("released by worker", max_length=2000)


@router.post("register", response={200: RegisterOut, **ERRORS})
def register(request: HttpRequest, body: RegisterIn):
    """Announce this worker; any job it still held from a previous run is released (attempt spent)."""
    worker: Worker = request.auth
    released = actions.register(
        worker, hostname=body.hostname, version=body.version, capabilities=body.capabilities.dict()
    )
    return {
        "worker": worker.name,
        "heartbeat_interval": settings.HEARTBEAT_SECONDS,
        "lease_seconds": settings.LEASE_SECONDS,
        "poll": {"wait_max": settings.CLAIM_WAIT_MAX_SECONDS, "idle_backoff_max": 5},
        "released": released,
    }


def _claim_payload(request: HttpRequest, job, lease: queue.Lease) -> dict:
    key = storage.source_key(job.blob_id)
    signed = storage.backend().presigned_get(key, settings.SOURCE_URL_SECONDS)
    return {
        "job": {
            "id": job.pk,
            "type": job.type,
            "priority": job.priority,
            "attempt": job.attempts,
            "max_attempts": job.max_attempts,
            "source": {
                "sha256": job.blob_id,
                "size": job.blob.size,
                "filename": job.filename,
                "url": absolute(request, signed.url),
            },
        },
        "lease": {"token": lease.token, "expires_at": lease.expires_at, "seconds": settings.LEASE_SECONDS},
    }


def _claim_now(request: HttpRequest, worker: Worker, job_types: list[str]) -> dict | None:
    """Lease the best ready job and describe it, or None (one trip to the database thread)."""
    claimed = queue.claim(worker, job_types)
    return _claim_payload(request, *claimed) if claimed else None


@router.post("claim", response={200: ClaimOut, 204: None, **ERRORS})
async def claim(request: HttpRequest, body: ClaimIn):
    """Lease the next job. With ``wait`` the request is held open until a job is ready (204 if none)."""
    worker: Worker = request.auth
    deadline = time.monotonic() + min(body.wait, settings.CLAIM_WAIT_MAX_SECONDS)
    while True:
        claimed = await sync_to_async(_claim_now)(request, worker, body.job_types)
        if claimed:
            return Status(200, claimed)
        if time.monotonic() >= deadline:
            return Status(204, None)
        await asyncio.sleep(min(0.25, max(deadline - time.monotonic(), 0)))
        await sync_to_async(worker.refresh_from_db)(fields=["enabled", "draining", "slots"])


@router.post("jobs/{int:job_id}/heartbeat", response={200: HeartbeatOut, **ERRORS})
def heartbeat(request: HttpRequest, job_id: int, body: HeartbeatIn):
    """Extend the lease and report progress; ``cancel`` true means stop this job now."""
    job, cancel = queue.heartbeat(
        request.auth, job_id, body.lease, stage=body.stage, pages_done=body.pages_done, pages_total=body.pages_total
    )
    return {"lease_expires_at": None if cancel else job.lease_expires_at, "cancel": cancel}


@router.post("jobs/{int:job_id}/upload-url", response={200: SignedOut, **ERRORS})
def upload_url(request: HttpRequest, job_id: int, body: UploadUrlIn):
    """A PUT URL for this job's output key only, valid while the lease lasts."""
    job = queue.check_lease(request.auth, job_id, body.lease)
    if body.size > settings.MAX_UPLOAD_BYTES:
        raise HttpError(422, f"output of {body.size} bytes exceeds BLOBFORGE_MAX_UPLOAD_BYTES")
    seconds = max(int((job.lease_expires_at - timezone.now()).total_seconds()), 1) + settings.LEASE_SECONDS
    signed = storage.backend().presigned_put(
        storage.output_key(job.type, job.blob_id), body.size, seconds, lease=f"{job.pk}:{body.lease}"
    )
    payload = signed.as_dict()
    payload["url"] = absolute(request, signed.url)
    return payload


@router.post("jobs/{int:job_id}/complete", response={200: CompleteOut, **ERRORS})
def complete(request: HttpRequest, job_id: int, body: CompleteIn):
    """Finish the job; the server checks that the output object is stored (422 if not).

    With ``claim`` the answer carries the next job too (``next``), as a separate claim
    would: the completion is committed first, so a failed claim never undoes it.
    """
    job = queue.complete(
        request.auth,
        job_id,
        body.lease,
        output_size=body.output.size,
        output_sha256=body.output.sha256,
        result=body.result,
    )
    answer = {"status": job.status, "next": None}
    if body.claim:
        answer["next"] = _claim_now(request, request.auth, body.claim.job_types)
    return answer


@router.post("jobs/{int:job_id}/fail", response={200: FailOut, **ERRORS})
def fail(request: HttpRequest, job_id: int, body: FailIn):
    """Record a failed attempt. ``retryable: false`` (corrupt or encrypted input) ends the job as dead."""
    status, next_at = queue.fail(request.auth, job_id, body.lease, error=body.error, retryable=body.retryable)
    return {"status": status, "next_attempt_at": next_at}


@router.post("jobs/{int:job_id}/release", response={200: StatusOut, **ERRORS})
def release(request: HttpRequest, job_id: int, body: ReleaseIn):
    """Give the job back without spending an attempt (shutdown before it finished)."""
    queue.release(request.auth, job_id, body.lease, reason=body.reason)
    return {"status": "pending"}


@router.post("unregister", response={200: StatusOut, **ERRORS})
def unregister(request: HttpRequest):
    """Say goodbye; jobs still held are released without spending an attempt."""
    actions.unregister(request.auth)
    return {"status": "unregistered"}
