"""Every write to a Worker row. Job-state changes they cause go through ``jobs.queue``."""

from django.db import transaction
from django.utils import timezone

from blobforge_site.credentials import WORKER_SECRET_PREFIX, new_secret
from jobs import queue
from workers.models import Worker


def create(name: str, *, slots: int = 1) -> tuple[Worker, str]:
    """Create a worker; returns it with its secret, which is never shown again."""
    plain, hashed = new_secret(WORKER_SECRET_PREFIX)
    worker = Worker(name=name, secret_hash=hashed, slots=slots)
    worker.full_clean()
    worker.save()
    return worker, plain


def regenerate_secret(worker: Worker, *, actor: str) -> str:
    """New secret; the old one stops working at once and held jobs are released."""
    plain, hashed = new_secret(WORKER_SECRET_PREFIX)
    with transaction.atomic():
        Worker.objects.filter(pk=worker.pk).update(secret_hash=hashed)
        queue.release_worker_jobs(worker, actor=actor, reason="worker secret regenerated", spend_attempt=False)
    worker.secret_hash = hashed
    return plain


def register(worker: Worker, *, hostname: str, version: str, capabilities: dict) -> int:
    """Record what the worker says it is; jobs it held before (it restarted) go back, attempt spent."""
    now = timezone.now()
    slots = max(1, min(int(capabilities.get("slots") or 1), 64))
    with transaction.atomic():
        released = queue.release_worker_jobs(
            worker, actor=f"worker:{worker.name}", reason="worker restarted while holding the job", spend_attempt=True
        )
        Worker.objects.filter(pk=worker.pk).update(
            hostname=hostname, version=version, capabilities=capabilities, slots=slots, registered_at=now, last_seen=now
        )
    worker.slots = slots
    return released


def unregister(worker: Worker) -> int:
    with transaction.atomic():
        released = queue.release_worker_jobs(
            worker, actor=f"worker:{worker.name}", reason="worker shut down", spend_attempt=False
        )
        Worker.objects.filter(pk=worker.pk).update(registered_at=None)
    return released


def set_draining(worker: Worker, draining: bool) -> None:
    Worker.objects.filter(pk=worker.pk).update(draining=draining)
    worker.draining = draining


def set_enabled(worker: Worker, enabled: bool, *, actor: str) -> int:
    """Disable: the secret stops working at once and held jobs are released (no attempt spent)."""
    with transaction.atomic():
        Worker.objects.filter(pk=worker.pk).update(enabled=enabled)
        released = 0
        if not enabled:
            released = queue.release_worker_jobs(worker, actor=actor, reason="worker disabled", spend_attempt=False)
    worker.enabled = enabled
    return released


def remove(worker: Worker, *, actor: str) -> None:
    with transaction.atomic():
        queue.release_worker_jobs(worker, actor=actor, reason="worker removed", spend_attempt=False)
        worker.delete()


def status(worker: Worker, offline_after_seconds: int) -> str:
    """online / draining / offline / disabled, derived from the switches and the last heartbeat."""
    if not worker.enabled:
        return "disabled"
    if worker.last_seen is None or (timezone.now() - worker.last_seen).total_seconds() > offline_after_seconds:
        return "offline"
    return "draining" if worker.draining else "online"
