"""The client API under ``/api/v1/`` (Bearer ``bf_…`` tokens with scopes): thin views over the queue."""

from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from accounts.auth import TokenAuth, actor_for
from blobforge_site.schemas import ERRORS, Strict, contains_nul
from jobs import ingest, queue, storage
from jobs.api_common import absolute, job_summary
from jobs.models import Blob, Job, JobStatus
from workers import actions as worker_actions
from workers.models import Worker

router = Router(tags=["client API"])
READ, SUBMIT, OPERATE = TokenAuth("read"), TokenAuth("submit"), TokenAuth("operate")
MAX_PAGE = 200
Sha256 = Field(..., pattern=r"^[0-9a-f]{64}$", description="Lowercase hex sha256 of the bytes.")


class BlobIn(Strict):
    sha256: str = Sha256
    size: int = Field(..., ge=1, le=1 << 50)
    filename: str = Field("", max_length=255)
    path: str = Field("", max_length=1024, description="Where the client saw it; folders become tags.")


class SignedOut(Schema):
    url: str
    method: str
    headers: dict[str, str]
    expires_in: int


class BlobOut(Schema):
    sha256: str
    size: int
    stored: bool
    upload: SignedOut | None


class JobIn(Strict):
    sha256: str = Sha256
    type: str = Field("pdf", max_length=32)
    priority: int = Field(3, ge=1, le=5)
    force: bool = False
    filename: str = Field("", max_length=255)


class JobOut(Schema):
    id: int
    type: str
    status: str
    priority: int
    filename: str
    sha256: str
    size: int
    attempts: int
    max_attempts: int
    worker: str | None
    stage: str
    pages_done: int | None
    pages_total: int | None
    last_error: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    available_at: datetime


class JobCreatedOut(JobOut):
    created: bool


class EventOut(Schema):
    at: datetime
    from_status: str
    to_status: str
    actor: str
    message: str


class JobDetailOut(JobOut):
    events: list[EventOut]
    result: dict[str, Any]
    output: dict[str, Any] | None


class JobPage(Schema):
    results: list[JobOut]
    next: str | None


class PriorityIn(Strict):
    priority: int = Field(..., ge=1, le=5)


class StatsOut(Schema):
    by_status: dict[str, int]
    by_priority: dict[str, int]
    workers: dict[str, int]


class WorkerOut(Schema):
    name: str
    status: str
    enabled: bool
    draining: bool
    hostname: str
    version: str
    last_seen: datetime | None
    capabilities: dict[str, Any]
    running: list[int]


@router.post("blobs", auth=SUBMIT, response={200: BlobOut, **ERRORS})
def declare_blob(request: HttpRequest, body: BlobIn):
    """Declare a document by its sha256: answers 'already stored' or an upload URL for its bytes."""
    blob, _ = ingest.record_blob(body.sha256, body.size, body.path or body.filename)
    if blob.size != body.size:
        raise HttpError(409, f"blob {body.sha256} is known with size {blob.size}, not {body.size}")
    if ingest.ensure_stored(blob):
        return {"sha256": blob.sha256, "size": blob.size, "stored": True, "upload": None}
    if body.size > settings.MAX_UPLOAD_BYTES:
        raise HttpError(422, f"{body.size} bytes exceeds BLOBFORGE_MAX_UPLOAD_BYTES ({settings.MAX_UPLOAD_BYTES})")
    signed = storage.backend().presigned_put(
        storage.source_key(blob.sha256), blob.size, settings.SOURCE_URL_SECONDS, sha256=blob.sha256
    )
    upload = signed.as_dict() | {"url": absolute(request, signed.url)}
    return {"sha256": blob.sha256, "size": blob.size, "stored": False, "upload": upload}


@router.post("jobs", auth=SUBMIT, response={200: JobCreatedOut, 201: JobCreatedOut, **ERRORS})
def create_job(request: HttpRequest, body: JobIn):
    """Queue a conversion of a stored blob (one per blob and type unless ``force``)."""
    blob = Blob.objects.filter(sha256=body.sha256).first()
    if blob is None:
        raise HttpError(404, f"no blob {body.sha256}: declare it with POST /api/v1/blobs first")
    if not ingest.ensure_stored(blob):
        raise HttpError(409, f"blob {body.sha256} has no stored bytes yet: upload them first")
    job, created = queue.submit(
        blob,
        job_type=body.type,
        priority=body.priority,
        force=body.force,
        actor=actor_for(request.auth),
        filename=body.filename,
    )
    job = Job.objects.select_related("blob", "worker").get(pk=job.pk)
    return Status(201 if created else 200, job_summary(job) | {"created": created})


@router.get("jobs", auth=READ, response={200: JobPage, **ERRORS})
def list_jobs(
    request: HttpRequest,
    status: Literal["pending", "running", "done", "dead", "cancelled"] | None = None,
    type: str | None = Query(None, max_length=32),
    priority: int | None = Query(None, ge=1, le=5),
    worker: str | None = Query(None, max_length=64),
    search: str | None = Query(None, max_length=200),
    cursor: int | None = Query(None, ge=0, description="The `next` link carries it."),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
):
    """Newest first, cursor-paginated. ``search`` matches a sha256 prefix, filename or path tag."""
    if contains_nul([type, worker, search]):
        raise HttpError(422, "query parameters must not contain NUL (\\u0000) characters")
    jobs = Job.objects.select_related("blob", "worker").order_by("-id")
    if status:
        jobs = jobs.filter(status=status)
    if type:
        jobs = jobs.filter(type=type)
    if priority:
        jobs = jobs.filter(priority=priority)
    if worker:
        jobs = jobs.filter(worker__name=worker)
    if search:
        term = search.strip().lower()
        match = Q(filename__icontains=term) | Q(blob__paths__path__icontains=term)
        if len(term) >= 4 and all(c in "0123456789abcdef" for c in term):
            match |= Q(blob__sha256__startswith=term)
        ids = Job.objects.filter(match).values("id")
        jobs = jobs.filter(id__in=ids)
    if cursor is not None:
        jobs = jobs.filter(id__lt=cursor)
    page = list(jobs[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    next_url = None
    if more:
        params = request.GET.copy()
        params["cursor"] = str(page[-1].pk)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return {"results": [job_summary(job) for job in page], "next": next_url}


def _job_detail(request: HttpRequest, job: Job) -> dict:
    output = None
    if job.status == JobStatus.DONE and job.output_key:
        signed = storage.backend().presigned_get(job.output_key, 3600)
        output = {
            "key": job.output_key,
            "size": job.output_size,
            "sha256": job.output_sha256,
            "url": absolute(request, signed.url),
        }
    events = [
        {
            "at": e.created_at,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "actor": e.actor,
            "message": e.message,
        }
        for e in job.events.order_by("id")[:500]
    ]
    return job_summary(job) | {"events": events, "result": job.result, "output": output}


def _get_job(job_id: int) -> Job:
    job = Job.objects.select_related("blob", "worker").filter(pk=job_id).first()
    if job is None:
        raise queue.JobNotFound(f"job {job_id} does not exist")
    return job


@router.get("jobs/{int:job_id}", auth=READ, response={200: JobDetailOut, **ERRORS})
def get_job(request: HttpRequest, job_id: int):
    """One job with its event history and, when done, a short-lived download URL for its output."""
    return _job_detail(request, _get_job(job_id))


@router.post("jobs/{int:job_id}/retry", auth=OPERATE, response={200: JobOut, **ERRORS})
def retry_job(request: HttpRequest, job_id: int):
    queue.retry(job_id, actor=actor_for(request.auth))
    return job_summary(_get_job(job_id))


@router.post("jobs/{int:job_id}/cancel", auth=OPERATE, response={200: JobOut, **ERRORS})
def cancel_job(request: HttpRequest, job_id: int):
    queue.cancel(job_id, actor=actor_for(request.auth))
    return job_summary(_get_job(job_id))


@router.post("jobs/{int:job_id}/priority", auth=OPERATE, response={200: JobOut, **ERRORS})
def set_priority(request: HttpRequest, job_id: int, body: PriorityIn):
    queue.reprioritize(job_id, body.priority, actor=actor_for(request.auth))
    return job_summary(_get_job(job_id))


def stats_payload() -> dict:
    """Counts by status and priority (grouped, indexed) and workers by derived status."""
    by_status = {status: 0 for status in JobStatus.values}
    for row in Job.objects.values("status").annotate(n=Count("id")).order_by():
        by_status[row["status"]] = row["n"]
    by_priority = {str(p): 0 for p in range(1, 6)}
    for row in Job.objects.filter(status__in=queue.ACTIVE).values("priority").annotate(n=Count("id")).order_by():
        by_priority[str(row["priority"])] = row["n"]
    workers = {"online": 0, "draining": 0, "offline": 0, "disabled": 0}
    for worker in Worker.objects.only("enabled", "draining", "last_seen"):
        workers[worker_actions.status(worker, settings.WORKER_OFFLINE_SECONDS)] += 1
    return {"by_status": by_status, "by_priority": by_priority, "workers": workers}


@router.get("stats", auth=READ, response={200: StatsOut, **ERRORS})
def stats(request: HttpRequest):
    """Job counts by status, pending+running counts by priority, workers by status."""
    return stats_payload()


def _worker_out(worker: Worker) -> dict:
    running = list(worker.jobs.filter(status=JobStatus.RUNNING).values_list("id", flat=True))
    return {
        "name": worker.name,
        "status": worker_actions.status(worker, settings.WORKER_OFFLINE_SECONDS),
        "enabled": worker.enabled,
        "draining": worker.draining,
        "hostname": worker.hostname,
        "version": worker.version,
        "last_seen": worker.last_seen,
        "capabilities": worker.capabilities,
        "running": running,
    }


@router.get("workers", auth=READ, response={200: list[WorkerOut], **ERRORS})
def list_workers(request: HttpRequest):
    return [_worker_out(worker) for worker in Worker.objects.all()[:1000]]


def _get_worker(name: str) -> Worker:
    worker = None if contains_nul(name) else Worker.objects.filter(name=name).first()
    if worker is None:
        raise queue.NotFound(f"no worker named {name!r}")
    return worker


@router.post("workers/{name}/drain", auth=OPERATE, response={200: WorkerOut, **ERRORS})
def drain_worker(request: HttpRequest, name: str):
    """The worker finishes its current job and gets no new one."""
    worker = _get_worker(name)
    worker_actions.set_draining(worker, True)
    return _worker_out(worker)


@router.post("workers/{name}/undrain", auth=OPERATE, response={200: WorkerOut, **ERRORS})
def undrain_worker(request: HttpRequest, name: str):
    worker = _get_worker(name)
    worker_actions.set_draining(worker, False)
    return _worker_out(worker)


from jobs import api_multipart  # noqa: E402,F401  (registers the multipart upload endpoints on this router)
