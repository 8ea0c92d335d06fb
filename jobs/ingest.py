"""Bringing documents in: content detection, hashing, Git LFS pointers, tags from paths.

Used by ``manage.py ingest``/``submit`` (bytes go straight to storage) and by the client
API's blob declaration (bytes come later through an upload URL).
"""

from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Seen:
    """A PDF met during an ingest, waiting for the next batch write."""

    sha256: str
    size: int
    relative: str
    source: Path | None


class Ingester:
    """Store and queue every PDF under some paths, counting what happened to each file.

    Files are hashed one by one but written in batches (``BATCH_FILES`` files or
    ``BATCH_BYTES`` of sources, whichever comes first): one lookup, one transaction for
    blobs and paths, and one for the jobs per batch instead of about six transactions per
    file. Bytes are stored between the two, outside any transaction, so a large upload
    never holds SQLite's write lock; a job is only queued once its source is stored.
    """

    BATCH_FILES = 500
    BATCH_BYTES = 256 * 1024 * 1024

    def __init__(self, *, job_type: str = "pdf", priority: int = 3, dry_run: bool = False, actor: str = "cli"):
        self.job_type, self.priority, self.dry_run, self.actor = job_type, priority, dry_run, actor
        self.summary = IngestSummary()
        self.seen: set[str] = set()
        self.deferred: list[tuple[Path, str, LfsPointer]] = []
        self.hasher = Hasher()  # sha256 in 1 MiB reads, cached in the files' xattrs where allowed
        self.batch: list[_Seen] = []
        self.batch_bytes = 0

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
                sha256, size = self.hasher.digest(path)
                self._add(_Seen(sha256, size, relative, path))
        except OSError as exc:
            self._problem("failed", relative, exc.strerror or str(exc))

    def _known(self, sha256: str) -> bool:
        return sha256 in self.seen or Blob.objects.filter(sha256=sha256, stored=True).exists()

    def _ingest_pointer(self, path: Path, relative: str, head: bytes) -> None:
        pointer = parse_lfs_pointer(head)
        if pointer is None:
            self._problem("skipped", relative, "malformed Git LFS pointer")
        elif self._known(pointer.sha256):
            self._add(_Seen(pointer.sha256, pointer.size, relative, None))
        else:
            # The real file may come later in this run; decide in finish().
            self.deferred.append((path, relative, pointer))

    def finish(self) -> IngestSummary:
        """Write the last batch, then resolve LFS pointers whose objects were not known when met."""
        self._flush()
        for path, relative, pointer in self.deferred:
            if self._known(pointer.sha256):
                self._add(_Seen(pointer.sha256, pointer.size, relative, None))
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
                sha256, size = self.hasher.digest(source)
                with source.open("rb") as handle:
                    is_pdf = sniff(handle.read(1024)) == "pdf"
                if sha256 != pointer.sha256 or not is_pdf:
                    self._problem("skipped", relative, "Git LFS object does not match its pointer or is not a PDF")
                else:
                    self._add(_Seen(sha256, size, relative, source))
                    self._flush()  # the materialised object is deleted right below
            finally:
                source.unlink(missing_ok=True)
        self.deferred.clear()
        self._flush()
        return self.summary

    def _add(self, item: _Seen) -> None:
        self.batch.append(item)
        self.batch_bytes += item.size
        if len(self.batch) >= self.BATCH_FILES or self.batch_bytes >= self.BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        if not batch:
            return
        stored = set(
            Blob.objects.filter(sha256__in={item.sha256 for item in batch}, stored=True).values_list(
                "sha256", flat=True
            )
        )
        fresh: list[_Seen] = []  # first sight of a blob not yet in storage: counted as new
        for item in batch:
            if item.sha256 not in self.seen and item.sha256 not in stored:
                fresh.append(item)
            self.seen.add(item.sha256)
            self.summary.bytes += item.size
        if self.dry_run:
            self.summary.new += len(fresh)
            self.summary.duplicate += len(batch) - len(fresh)
            return
        self._record(batch)
        failed = {item.sha256: why for item in fresh if (why := self._store(item))}
        with transaction.atomic():
            Blob.objects.filter(sha256__in=[item.sha256 for item in fresh if item.sha256 not in failed]).update(
                stored=True
            )
            filenames: dict[str, str] = {}  # the first name a blob was met under names its job
            for item in batch:
                if item.sha256 not in failed:
                    filenames.setdefault(item.sha256, Path(item.relative).name)
            self.summary.jobs_created += queue.submit_many(
                filenames,
                job_type=self.job_type,
                priority=self.priority,
                actor=self.actor,
            )
        fresh_ids = {id(item) for item in fresh}
        for item in batch:
            if item.sha256 in failed:
                self._problem("failed", item.relative, failed[item.sha256])
            elif id(item) in fresh_ids:
                self.summary.new += 1
            else:
                self.summary.duplicate += 1

    def _record(self, batch: list[_Seen]) -> None:
        """Blob rows and the paths they were seen at, in one transaction."""
        with transaction.atomic():
            Blob.objects.bulk_create(
                (Blob(sha256=item.sha256, size=item.size) for item in batch), ignore_conflicts=True
            )
            BlobPath.objects.bulk_create(
                (
                    BlobPath(blob_id=item.sha256, path=item.relative[:1024], tags=tags_for(item.relative))
                    for item in batch
                ),
                ignore_conflicts=True,
            )

    @staticmethod
    def _store(item: _Seen) -> str:
        """Put a new blob's bytes in storage unless they are there already; the reason it failed, or ''."""
        if item.source is None:
            return "bytes not available"
        key = storage.source_key(item.sha256)
        try:
            if storage.backend().size_of(key) != item.size:
                with item.source.open("rb") as handle:
                    storage.backend().save(key, handle, sha256=item.sha256)
        except storage.StorageError as exc:
            return str(exc)
        except OSError as exc:
            return exc.strerror or str(exc)
        return ""


def submit_file(path: Path, *, job_type: str, priority: int, force: bool, actor: str) -> tuple[Job, bool]:
    """Store one PDF and queue it (``manage.py submit``); raises ValueError for a non-PDF."""
    with path.open("rb") as handle:
        if sniff(handle.read(1024)) != "pdf":
            raise ValueError(f"{path} is not a PDF (its first bytes lack %PDF-)")
    sha256, size = Hasher().digest(path)
    blob, _ = record_blob(sha256, size, path.name)
    if not ensure_stored(blob):
        with path.open("rb") as handle:
            storage.backend().save(storage.source_key(sha256), handle, sha256=sha256)
        Blob.objects.filter(pk=sha256).update(stored=True)
    return queue.submit(blob, job_type=job_type, priority=priority, force=force, actor=actor, filename=path.name)
