"""Bringing documents in: content detection, hashing, Git LFS pointers, tags from paths.

Used by ``manage.py ingest``/``submit`` (bytes go straight to storage) and by the client
API's blob declaration (bytes come later through an upload URL).
"""

from pathlib import Path

from django.db import IntegrityError, transaction

# The pure file rules live in the Django-free client package, so that `blobforge ingest`
# and `manage.py ingest` agree on what a document is.
from blobforge_client.scan import (
    Hasher,
    IngestCounts,
    LfsPointer,
    iter_files,
    materialise_lfs,
    parse_lfs_pointer,
    sniff,
    tags_for,
)
from jobs import queue, storage
from jobs.models import Blob, BlobPath, Job

__all__ = ["Ingester", "IngestSummary", "ensure_stored", "iter_files", "record_blob", "submit_file"]


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size in 1 MiB reads, remembered in the file's xattrs when the filesystem allows."""
    return Hasher().digest(path)


def record_blob(sha256: str, size: int, path: str, content_type: str = "application/pdf") -> tuple[Blob, bool]:
    """Create the blob row if new and remember ``path``; returns ``(blob, created)``."""
    try:
        with transaction.atomic():
            blob, created = Blob.objects.get_or_create(
                sha256=sha256, defaults={"size": size, "content_type": content_type}
            )
    except IntegrityError:
        blob, created = Blob.objects.get(sha256=sha256), False
    if path:
        BlobPath.objects.get_or_create(blob=blob, path=path[:1024], defaults={"tags": tags_for(path)})
    return blob, created


def ensure_stored(blob: Blob) -> bool:
    """True when the blob's bytes are in storage (checked there once, then remembered)."""
    if blob.stored:
        return True
    if storage.backend().size_of(storage.source_key(blob.sha256)) == blob.size:
        Blob.objects.filter(pk=blob.pk).update(stored=True)
        blob.stored = True
    return blob.stored


IngestSummary = IngestCounts


class Ingester:
    """Store and queue every PDF under some paths, counting what happened to each file."""

    def __init__(self, *, job_type: str = "pdf", priority: int = 3, dry_run: bool = False, actor: str = "cli"):
        self.job_type, self.priority, self.dry_run, self.actor = job_type, priority, dry_run, actor
        self.summary = IngestSummary()
        self.seen: set[str] = set()
        self.deferred: list[tuple[Path, str, LfsPointer]] = []

    def _problem(self, kind: str, path: str, why: str) -> None:
        setattr(self.summary, kind, getattr(self.summary, kind) + 1)
        self.summary.problems.append({"path": path, "result": kind, "reason": why})

    def ingest_file(self, path: Path, relative: str) -> None:
        try:
            with path.open("rb") as handle:
                head = handle.read(2048)
            kind = sniff(head)
            if kind == "other":
                self._problem("skipped", relative, "not a PDF (by its bytes)")
            elif kind == "lfs":
                self._ingest_pointer(path, relative, head)
            else:
                sha256, size = hash_file(path)
                self._count(sha256, size, relative, path)
        except OSError as exc:
            self._problem("failed", relative, exc.strerror or str(exc))

    def _known(self, sha256: str) -> bool:
        return sha256 in self.seen or Blob.objects.filter(sha256=sha256, stored=True).exists()

    def _ingest_pointer(self, path: Path, relative: str, head: bytes) -> None:
        pointer = parse_lfs_pointer(head)
        if pointer is None:
            self._problem("skipped", relative, "malformed Git LFS pointer")
        elif self._known(pointer.sha256):
            self._count(pointer.sha256, pointer.size, relative, None)
        else:
            # The real file may come later in this run; decide in finish().
            self.deferred.append((path, relative, pointer))

    def finish(self) -> IngestSummary:
        """Resolve LFS pointers whose objects were not known when they were met."""
        for path, relative, pointer in self.deferred:
            if self._known(pointer.sha256):
                self._count(pointer.sha256, pointer.size, relative, None)
                continue
            source = None if self.dry_run else materialise_lfs(path)
            if source is None:
                self._problem(
                    "skipped",
                    relative,
                    f"Git LFS pointer to {pointer.sha256[:12]}…, object not available "
                    "(install git-lfs and run `git lfs pull`)",
                )
                continue
            try:
                sha256, size = hash_file(source)
                with source.open("rb") as handle:
                    is_pdf = sniff(handle.read(1024)) == "pdf"
                if sha256 != pointer.sha256 or not is_pdf:
                    self._problem("skipped", relative, "Git LFS object does not match its pointer or is not a PDF")
                else:
                    self._count(sha256, size, relative, source)
            finally:
                source.unlink(missing_ok=True)
        self.deferred.clear()
        return self.summary

    def _count(self, sha256: str, size: int, relative: str, source: Path | None) -> None:
        known = self._known(sha256)
        self.seen.add(sha256)
        self.summary.bytes += size
        if self.dry_run:
            self.summary.duplicate += known
            self.summary.new += not known
            return
        blob, _ = record_blob(sha256, size, relative)
        if not known:
            if source is None:
                self._problem("failed", relative, "bytes not available")
                return
            if not ensure_stored(blob):
                with source.open("rb") as handle:
                    storage.backend().save(storage.source_key(sha256), handle, sha256=sha256)
                Blob.objects.filter(pk=sha256).update(stored=True)
                blob.stored = True
        _, created = queue.submit(
            blob, job_type=self.job_type, priority=self.priority, actor=self.actor, filename=Path(relative).name
        )
        self.summary.jobs_created += created
        if known:
            self.summary.duplicate += 1
        else:
            self.summary.new += 1


def submit_file(path: Path, *, job_type: str, priority: int, force: bool, actor: str) -> tuple[Job, bool]:
    """Store one PDF and queue it (``manage.py submit``); raises ValueError for a non-PDF."""
    with path.open("rb") as handle:
        if sniff(handle.read(1024)) != "pdf":
            raise ValueError(f"{path} is not a PDF (its first bytes lack %PDF-)")
    sha256, size = hash_file(path)
    blob, _ = record_blob(sha256, size, path.name)
    if not ensure_stored(blob):
        with path.open("rb") as handle:
            storage.backend().save(storage.source_key(sha256), handle, sha256=sha256)
        Blob.objects.filter(pk=sha256).update(stored=True)
    return queue.submit(blob, job_type=job_type, priority=priority, force=force, actor=actor, filename=path.name)
