"""Small builders for in-process tests: blobs, jobs and workers made the way the system makes them."""

import hashlib
import itertools

from jobs import queue
from jobs.ingest import record_blob
from jobs.models import Blob, Job
from workers import actions
from workers.models import Worker

_counter = itertools.count()


def make_blob(content: bytes | None = None, path: str = "") -> Blob:
    content = content if content is not None else f"%PDF-1.4 test {next(_counter)}".encode()
    sha = hashlib.sha256(content).hexdigest()
    blob, _ = record_blob(sha, len(content), path or f"docs/{sha[:8]}.pdf")
    Blob.objects.filter(pk=sha).update(stored=True)
    blob.stored = True
    return blob


def make_job(priority: int = 3, **kwargs) -> Job:
    job, created = queue.submit(make_blob(), priority=priority, **kwargs)
    assert created
    return job


def make_worker(name: str | None = None, **fields) -> Worker:
    worker, _secret = actions.create(name or f"w{next(_counter)}")
    if fields:
        Worker.objects.filter(pk=worker.pk).update(**fields)
        worker.refresh_from_db()
    return worker
