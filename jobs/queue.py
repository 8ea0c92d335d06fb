"""The queue service: the only code that writes job state.

Every public function runs in one transaction, changes the job row with a guarded
compare-and-swap (``UPDATE … WHERE id=? AND status=? [AND lease_token=?]``, one row or
nothing) and appends a ``JobEvent`` in the same transaction. The events are the audit
log and the outbox that the live dashboard tails.

Actors are plain strings: ``worker:<name>``, ``user:<username>``, ``token:<name>``,
``cli``, ``system``.
"""

import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from blobforge_site.metrics import timed_claim
from jobs.models import Blob, Job, JobEvent, JobStatus
from workers.models import Worker

log = logging.getLogger(__name__)

ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)
TERMINAL = (JobStatus.DONE, JobStatus.DEAD, JobStatus.CANCELLED)
STAGES = ("claimed", "downloading", "converting", "packaging", "uploading", "completing")


class QueueError(Exception):
    """A refused operation; ``status_code`` is what an HTTP client should see."""

    status_code = 409

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(QueueError):
    status_code = 404


class JobNotFound(NotFound):
    pass


class LeaseError(QueueError):
    """Wrong, expired or superseded lease: the caller no longer owns the job."""

    status_code = 409


class NotYourJob(QueueError):
    status_code = 403


class TransitionRefused(QueueError):
    status_code = 409


class OutputMissing(QueueError):
    status_code = 422


class WorkerUnavailable(QueueError):
    status_code = 403


@dataclass(frozen=True)
class Lease:
    token: str
    expires_at: datetime


def claim_rank(priority: int, available_at: datetime) -> float:
    """Claim order key: earlier is better.

    Each priority step is worth ``BLOBFORGE_AGING_SECONDS`` of waiting, so jobs of one
    age are taken strictly by priority, and a background job that has waited four
    steps longer than a critical one goes first: aging without a rewrite of any row,
    and one index (status, type, claim_rank) serves every claim.
    """
    return available_at.timestamp() + priority * settings.AGING_SECONDS


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter in its upper half, capped at RETRY_MAX."""
    ceiling = min(settings.RETRY_MAX_SECONDS, settings.RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def _event(job_id: int, from_status: str, to_status: str, actor: str, message: str = "") -> None:
    JobEvent.objects.create(
        job_id=job_id, from_status=from_status, to_status=to_status, actor=actor, message=message[:10_000]
    )


def _swap(job_id: int, expect: dict, changes: dict) -> bool:
    """Compare-and-swap one job row; True when exactly that row changed."""
    changes.setdefault("updated_at", timezone.now())
    return Job.objects.filter(pk=job_id, **expect).update(**changes) == 1


def _load(job_id: int) -> Job:
    try:
        return Job.objects.select_related("blob").get(pk=job_id)
    except Job.DoesNotExist:
        raise JobNotFound(f"job {job_id} does not exist") from None


# --- Submitting ----------------------------------------------------------------------


def submit(
    blob: Blob,
    *,
    job_type: str = "pdf",
    priority: int = 3,
    force: bool = False,
    actor: str = "system",
    filename: str = "",
    max_attempts: int | None = None,
) -> tuple[Job, bool]:
    """Queue a conversion of ``blob``; returns ``(job, created)``.

    Without ``force`` there is one job per (blob, type): an existing one is returned.
    """
    _check_submission(job_type, priority)
    if not force:
        existing = Job.objects.filter(blob=blob, type=job_type, forced=False).first()
        if existing:
            return existing, False
    now = timezone.now()
    try:
        with transaction.atomic():
            job = Job.objects.create(
                type=job_type,
                blob=blob,
                filename=(filename or blob.filename)[:255],
                forced=force,
                priority=priority,
                max_attempts=max_attempts or settings.MAX_ATTEMPTS,
                available_at=now,
                claim_rank=claim_rank(priority, now),
            )
            _event(job.pk, "", JobStatus.PENDING, actor, "forced resubmission" if force else "submitted")
    except IntegrityError:
        # Another process submitted the same (blob, type) between our check and insert.
        return Job.objects.get(blob=blob, type=job_type, forced=False), False
    return job, True


def submit_many(blobs: dict[str, str], *, job_type: str = "pdf", priority: int = 3, actor: str = "system") -> int:
    """Queue one job per blob (``{sha256: filename}``) that has none of ``job_type`` yet.

    The bulk form of ``submit`` for ingest: one transaction, three queries, however many
    blobs. Returns how many jobs were created. If another process queues one of the same
    blobs meanwhile, the batch falls back to ``submit`` one blob at a time.
    """
    _check_submission(job_type, priority)
    try:
        with transaction.atomic():
            queued = set(
                Job.objects.filter(blob_id__in=list(blobs), type=job_type, forced=False).values_list(
                    "blob_id", flat=True
                )
            )
            now = timezone.now()
            jobs = Job.objects.bulk_create(
                Job(
                    type=job_type,
                    blob_id=sha256,
                    filename=(filename or f"{sha256}.pdf")[:255],
                    priority=priority,
                    max_attempts=settings.MAX_ATTEMPTS,
                    available_at=now,
                    claim_rank=claim_rank(priority, now),
                )
                for sha256, filename in blobs.items()
                if sha256 not in queued
            )
            JobEvent.objects.bulk_create(
                JobEvent(job_id=job.pk, from_status="", to_status=JobStatus.PENDING, actor=actor, message="submitted")
                for job in jobs
            )
            return len(jobs)
    except IntegrityError:
        blob_rows = Blob.objects.in_bulk(list(blobs))
        return sum(
            submit(blob_rows[sha256], job_type=job_type, priority=priority, actor=actor, filename=filename)[1]
            for sha256, filename in blobs.items()
        )


def _check_submission(job_type: str, priority: int) -> None:
    if job_type not in settings.JOB_TYPES:
        raise TransitionRefused(f"unknown job type {job_type!r}; known: {', '.join(settings.JOB_TYPES)}")
    if not 1 <= priority <= 5:
        raise TransitionRefused(f"priority must be 1 (critical) to 5 (background), not {priority}")


# --- The worker side -----------------------------------------------------------------

_last_reap = 0.0


def _reap_if_due() -> None:
    global _last_reap
    if time.monotonic() - _last_reap >= 1.0:
        _last_reap = time.monotonic()
        reap_expired()


@timed_claim
def claim(worker: Worker, job_types: list[str]) -> tuple[Job, Lease] | None:
    """Lease the best ready job to ``worker``, or None when nothing is ready for it."""
    if not worker.enabled:
        raise WorkerUnavailable(f"worker {worker.name} is disabled")
    if worker.draining:
        return None
    _reap_if_due()
    types = [t for t in job_types if t in settings.JOB_TYPES] or []
    if not types:
        return None
    with transaction.atomic():
        held = Job.objects.filter(worker=worker, status=JobStatus.RUNNING).count()
        if held >= max(worker.slots, 1):
            raise TransitionRefused(
                f"worker {worker.name} already holds {held} job(s) and has {worker.slots} slot(s); "
                "complete, fail or release before claiming another"
            )
        now = timezone.now()
        candidates = Job.objects.filter(status=JobStatus.PENDING, type__in=types, available_at__lte=now).order_by(
            "claim_rank", "id"
        )
        # PostgreSQL: lock exactly the one row this claim takes, so N concurrent claims take N
        # different jobs (locking a few each, N/3 claims could hide every job from the rest).
        # SQLite: BEGIN IMMEDIATE already serialises claims; a few candidates guard the CAS.
        tries = 3
        if connection.vendor == "postgresql":
            candidates, tries = candidates.select_for_update(skip_locked=True), 1
        for job_id in candidates.values_list("id", flat=True)[:tries]:
            lease = Lease(secrets.token_urlsafe(18), now + timedelta(seconds=settings.LEASE_SECONDS))
            swapped = _swap(
                job_id,
                {"status": JobStatus.PENDING},
                {
                    "status": JobStatus.RUNNING,
                    "lease_token": lease.token,
                    "lease_expires_at": lease.expires_at,
                    "worker": worker,
                    "attempts": F("attempts") + 1,
                    "started_at": now,
                    "stage": "claimed",
                    "pages_done": None,
                    "pages_total": None,
                },
            )
            if swapped:
                job = Job.objects.select_related("blob").get(pk=job_id)
                _event(job_id, JobStatus.PENDING, JobStatus.RUNNING, f"worker:{worker.name}", f"attempt {job.attempts}")
                return job, lease
    return None


def _leased(worker: Worker, job_id: int, lease: str, *, allow_cancelled: bool = False) -> Job:
    """Load a job and check that ``worker`` holds it under ``lease`` right now."""
    job = _load(job_id)
    if allow_cancelled and job.status == JobStatus.CANCELLED and job.lease_token == lease:
        if job.worker_id != worker.pk:
            raise NotYourJob(f"job {job_id} is not leased to worker {worker.name}")
        return job
    if job.status != JobStatus.RUNNING:
        raise LeaseError(f"job {job_id} is {job.status}, not running: this lease is no longer valid")
    if not job.lease_token or not secrets.compare_digest(job.lease_token, lease):
        raise LeaseError(f"lease does not match job {job_id}: it was released, expired or given to another worker")
    if job.worker_id != worker.pk:
        raise NotYourJob(f"job {job_id} is not leased to worker {worker.name}")
    if job.lease_expires_at <= timezone.now():
        raise LeaseError(f"lease on job {job_id} expired at {job.lease_expires_at.isoformat()}")
    return job


def check_lease(worker: Worker, job_id: int, lease: str) -> Job:
    """Raise unless ``worker`` holds a live lease on the job (used before handing out URLs)."""
    return _leased(worker, job_id, lease)


def lease_is_live(job_id: int, lease: str) -> bool:
    return Job.objects.filter(
        pk=job_id, status=JobStatus.RUNNING, lease_token=lease, lease_expires_at__gt=timezone.now()
    ).exists()


def heartbeat(
    worker: Worker,
    job_id: int,
    lease: str,
    *,
    stage: str = "",
    pages_done: int | None = None,
    pages_total: int | None = None,
) -> tuple[Job, bool]:
    """Extend the lease and record progress; returns ``(job, cancel)``.

    ``cancel`` is True when an operator cancelled the job: the worker should stop.
    """
    with transaction.atomic():
        job = _leased(worker, job_id, lease, allow_cancelled=True)
        if job.status == JobStatus.CANCELLED:
            return job, True
        expires = timezone.now() + timedelta(seconds=settings.LEASE_SECONDS)
        changes: dict = {"lease_expires_at": expires}
        if stage:
            changes["stage"] = stage
        if pages_total is not None:
            changes["pages_total"] = pages_total
        if pages_done is not None:
            changes["pages_done"] = min(pages_done, pages_total or job.pages_total or pages_done)
        if not _swap(job_id, {"status": JobStatus.RUNNING, "lease_token": lease}, changes):
            raise LeaseError(f"lease on job {job_id} was lost while extending it")
        for field, value in changes.items():
            setattr(job, field, value)
    return job, False


def complete(
    worker: Worker,
    job_id: int,
    lease: str,
    *,
    output_size: int,
    output_sha256: str,
    result: dict,
    output_exists=None,
) -> Job:
    """Mark the job done once its output object is in storage.

    ``output_exists(key) -> size or None`` is checked before the transaction, so a slow
    object store never holds the database write lock.
    """
    from jobs import storage

    job = _leased(worker, job_id, lease)
    key = storage.output_key(job.type, job.blob_id)
    stored_size = (output_exists or storage.backend().size_of)(key)
    if stored_size is None:
        raise OutputMissing(f"no output at {key}: upload it through upload-url before completing")
    if stored_size != output_size:
        raise OutputMissing(f"output at {key} is {stored_size} bytes, not the {output_size} declared")
    now = timezone.now()
    with transaction.atomic():
        changes = {
            "status": JobStatus.DONE,
            "lease_token": None,
            "lease_expires_at": None,
            "finished_at": now,
            "stage": "",
            "pages_done": result.get("pages") if isinstance(result.get("pages"), int) else job.pages_total,
            "result": result,
            "output_key": key,
            "output_size": output_size,
            "output_sha256": output_sha256,
            "last_error": "",
        }
        expect = {"status": JobStatus.RUNNING, "lease_token": lease, "worker": worker, "lease_expires_at__gt": now}
        if not _swap(job_id, expect, changes):
            raise LeaseError(f"lease on job {job_id} was lost before completion")
        _event(job_id, JobStatus.RUNNING, JobStatus.DONE, f"worker:{worker.name}", f"output {output_size} bytes")
    for field, value in changes.items():  # the row as written, without reading it back
        setattr(job, field, value)
    return job


def _fail_running(job: Job, lease: str, actor: str, error: str, retryable: bool) -> tuple[str, datetime | None]:
    """Spend the attempt of a running job: back to pending after a backoff, or dead."""
    now = timezone.now()
    if retryable and job.attempts < job.max_attempts:
        status, next_at = JobStatus.PENDING, now + timedelta(seconds=backoff_seconds(job.attempts))
        why = f"attempt {job.attempts} of {job.max_attempts} failed, retry at {next_at.isoformat(timespec='seconds')}"
    else:
        status, next_at = JobStatus.DEAD, None
        why = "not retryable" if not retryable else f"attempt {job.attempts} of {job.max_attempts} failed"
    changes = {
        "status": status,
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": error[:20_000],
        "stage": "",
    }
    if next_at:
        changes |= {"available_at": next_at, "claim_rank": claim_rank(job.priority, next_at)}
    else:
        changes["finished_at"] = now
    if not _swap(job.pk, {"status": JobStatus.RUNNING, "lease_token": lease}, changes):
        raise LeaseError(f"lease on job {job.pk} was lost before the failure was recorded")
    _event(job.pk, JobStatus.RUNNING, status, actor, f"{why}: {error[:2000]}")
    return status, next_at


def fail(worker: Worker, job_id: int, lease: str, *, error: str, retryable: bool = True) -> tuple[str, datetime | None]:
    """Record a failed attempt; returns the new status and when it may run again."""
    with transaction.atomic():
        job = _leased(worker, job_id, lease)
        return _fail_running(job, lease, f"worker:{worker.name}", error or "unknown error", retryable)


def release(worker: Worker, job_id: int, lease: str, *, reason: str = "released by worker") -> Job:
    """Give a job back without spending an attempt (clean shutdown)."""
    with transaction.atomic():
        job = _leased(worker, job_id, lease)
        _release(job, f"worker:{worker.name}", reason)
    return job


def _release(job: Job, actor: str, reason: str, *, spend_attempt: bool = False) -> None:
    """Put a running job back to pending; with ``spend_attempt`` its attempt counts (dead when none are left)."""
    now = timezone.now()
    if spend_attempt and job.attempts >= job.max_attempts:
        to_status = JobStatus.DEAD
        changes = {"finished_at": now, "last_error": reason}
        reason = f"{reason}; no attempts left"
    else:
        to_status = JobStatus.PENDING
        changes = {"available_at": now, "claim_rank": claim_rank(job.priority, now)}
        if spend_attempt:
            changes["last_error"] = reason
        else:
            changes["attempts"] = F("attempts") - 1
    changes |= {"status": to_status, "lease_token": None, "lease_expires_at": None, "stage": ""}
    if _swap(job.pk, {"status": JobStatus.RUNNING, "lease_token": job.lease_token}, changes):
        _event(job.pk, JobStatus.RUNNING, to_status, actor, reason)


def release_worker_jobs(worker: Worker, *, actor: str, reason: str, spend_attempt: bool) -> int:
    """Release every job ``worker`` holds (restart, unregister, disable)."""
    count = 0
    with transaction.atomic():
        for job in Job.objects.filter(worker=worker, status=JobStatus.RUNNING):
            _release(job, actor, reason, spend_attempt=spend_attempt)
            count += 1
    return count


def reap_expired() -> int:
    """Take back running jobs whose lease ran out; each spends its attempt."""
    now = timezone.now()
    expired = list(
        Job.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=now).select_related("worker")[:500]
    )
    for job in expired:
        with transaction.atomic():
            who = job.worker.name if job.worker else "unknown"
            _release(job, "system", f"lease expired: worker {who} stopped heartbeating", spend_attempt=True)
    return len(expired)


# --- The operator side ---------------------------------------------------------------


def retry(job_id: int, *, actor: str) -> Job:
    """Queue a dead or cancelled job again with a fresh set of attempts."""
    with transaction.atomic():
        job = _load(job_id)
        if job.status not in (JobStatus.DEAD, JobStatus.CANCELLED):
            hint = " (submit it again with force to convert it anew)" if job.status == JobStatus.DONE else ""
            raise TransitionRefused(f"job {job_id} is {job.status}; only dead or cancelled jobs can be retried{hint}")
        now = timezone.now()
        if not _swap(
            job_id,
            {"status": job.status},
            {
                "status": JobStatus.PENDING,
                "attempts": 0,
                "available_at": now,
                "finished_at": None,
                "claim_rank": claim_rank(job.priority, now),
                "worker": None,
                "lease_token": None,
            },
        ):
            raise TransitionRefused(f"job {job_id} changed while retrying it; try again")
        _event(job_id, job.status, JobStatus.PENDING, actor, "retried")
    job.refresh_from_db()
    return job


def cancel(job_id: int, *, actor: str, reason: str = "cancelled") -> Job:
    """Cancel a pending or running job; a running one's worker is told at its next heartbeat."""
    with transaction.atomic():
        job = _load(job_id)
        if job.status not in ACTIVE:
            raise TransitionRefused(f"job {job_id} is {job.status}; only pending or running jobs can be cancelled")
        now = timezone.now()
        # The lease token stays on a cancelled job so its worker's heartbeat can learn of it.
        if not _swap(
            job_id,
            {"status": job.status, "lease_token": job.lease_token},
            {"status": JobStatus.CANCELLED, "finished_at": now, "lease_expires_at": None, "stage": ""},
        ):
            raise TransitionRefused(f"job {job_id} changed while cancelling it; try again")
        _event(job_id, job.status, JobStatus.CANCELLED, actor, reason)
    job.refresh_from_db()
    return job


def reprioritize(job_id: int, priority: int, *, actor: str) -> Job:
    if not 1 <= priority <= 5:
        raise TransitionRefused(f"priority must be 1 (critical) to 5 (background), not {priority}")
    with transaction.atomic():
        job = _load(job_id)
        if job.status not in ACTIVE:
            raise TransitionRefused(f"job {job_id} is {job.status}; only pending or running jobs can change priority")
        if job.priority == priority:
            return job
        if not _swap(
            job_id,
            {"status": job.status, "priority": job.priority},
            {"priority": priority, "claim_rank": claim_rank(priority, job.available_at)},
        ):
            raise TransitionRefused(f"job {job_id} changed while reprioritizing it; try again")
        _event(job_id, job.status, job.status, actor, f"priority {job.priority} → {priority}")
    job.refresh_from_db()
    return job


def prune_events(older_than_days: int) -> int:
    """Delete history older than the retention of jobs that are finished; active jobs keep all of theirs.

    The newest event of every job is kept, so each job still shows how it ended.
    """
    cutoff = timezone.now() - timedelta(days=older_than_days)
    newest = JobEvent.objects.filter(job=OuterRef("job")).order_by("-id").values("id")[:1]
    stale = JobEvent.objects.filter(created_at__lt=cutoff, job__status__in=TERMINAL).exclude(id=Subquery(newest))
    deleted, _ = stale.delete()
    return deleted
