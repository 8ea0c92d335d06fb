"""Worker authentication: ``X-Worker-ID`` (the worker's name) + ``X-Worker-Secret``.

The worker found here is the only identity a worker request ever acts as; ids in
bodies or URLs are never trusted for identity.
"""

from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyHeader

from blobforge_site.credentials import WORKER_SECRET_PREFIX, matches
from workers.models import Worker

LAST_SEEN_RESOLUTION = timedelta(seconds=5)


def authenticate_worker(worker_id: str, secret: str) -> Worker:
    """Return the enabled worker for these credentials or raise a 401/403 HttpError."""
    if not worker_id or not secret:
        raise AuthenticationError(401, "worker credentials required: X-Worker-ID and X-Worker-Secret headers")
    if not secret.startswith(WORKER_SECRET_PREFIX):
        raise AuthenticationError(401, "not a worker secret (they start with bfw_); API tokens do not work here")
    worker = Worker.objects.filter(name=worker_id).first()
    if worker is None or not matches(secret, worker.secret_hash):
        raise AuthenticationError(401, "unknown worker or wrong secret")
    if not worker.enabled:
        raise HttpError(403, f"worker {worker.name} is disabled")
    now = timezone.now()
    if worker.last_seen is None or now - worker.last_seen > LAST_SEEN_RESOLUTION:
        # Seen-times are kept to a few seconds so that not every request writes.
        Worker.objects.filter(pk=worker.pk).update(last_seen=now)
        worker.last_seen = now
    return worker


class WorkerAuth(APIKeyHeader):
    """Ninja security scheme; documents X-Worker-Secret, reads X-Worker-ID beside it."""

    param_name = "X-Worker-Secret"

    def authenticate(self, request: HttpRequest, key: str | None) -> Worker:
        return authenticate_worker(request.headers.get("X-Worker-ID", ""), key or "")
