"""Helpers shared by the API views: absolute URLs and the JSON shape of a job."""

from django.http import HttpRequest

from jobs.models import Job


def absolute(request: HttpRequest, url: str) -> str:
    """Storage URLs of the local backend are paths on this server; S3 URLs are already absolute."""
    return url if "://" in url else request.build_absolute_uri(url)


def job_summary(job: Job) -> dict:
    """The fields every job listing carries (load jobs with select_related("blob", "worker"))."""
    return {
        "id": job.pk,
        "type": job.type,
        "status": job.status,
        "priority": job.priority,
        "filename": job.filename,
        "sha256": job.blob_id,
        "size": job.blob.size,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "worker": job.worker.name if job.worker else None,
        "stage": job.stage,
        "pages_done": job.pages_done,
        "pages_total": job.pages_total,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "available_at": job.available_at,
    }
