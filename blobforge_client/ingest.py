"""``blobforge ingest``: declare every PDF under some paths, upload only what the server lacks, queue jobs.

The walk and hashing run on the calling thread; each distinct document is then sent by a
thread pool (declare → upload if not stored → create job). Nothing is remembered locally
between runs: a re-run declares again and the server answers ``stored: true`` for what an
interrupted run already uploaded, which makes the command resumable at file granularity.
"""

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from blobforge_client import scan
from blobforge_client.http import ApiError, Client, ConnectionProblem

MiB = 1024 * 1024
MULTIPART_THRESHOLD = 64 * MiB
PART_SIZE = 16 * MiB


class IngestAborted(Exception):
    """The run cannot go on (token refused, server unreachable): exit code 2."""


@dataclass
class Summary(scan.IngestCounts):
    """The server's counts plus what only the client knows: uploads and the hash cache."""

    files: int = 0
    uploaded: int = 0
    uploaded_bytes: int = 0
    hashed_files: int = 0
    hash_cache_hits: int = 0


@dataclass
class Options:
    job_type: str = "pdf"
    priority: int = 3
    dry_run: bool = False
    parallel: int = 4
    multipart_threshold: int = MULTIPART_THRESHOLD
    part_size: int = PART_SIZE
    use_xattrs: bool = True


class Ingest:
    """One ``ingest`` run; ``progress(summary, elapsed)`` is called a few times a second when given."""

    def __init__(self, client: Client, options: Options, progress: Callable[[Summary, float], None] | None = None):
        self.client, self.options, self.progress = client, options, progress
        self.summary = Summary()
        self.hasher = scan.Hasher(use_cache=options.use_xattrs)
        self.lock = threading.Lock()
        self.abort: Exception | None = None
        self.seen: set[str] = set()
        self.sends: list[Future] = []
        self.extra_paths: list[tuple[str, int, str]] = []
        self.pointers: list[tuple[Path, str, scan.LfsPointer]] = []
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.elapsed = 0.0

    # --- bookkeeping ---
    def _count(self, result: str, path: str = "", reason: str = "") -> None:
        with self.lock:
            setattr(self.summary, result, getattr(self.summary, result) + 1)
            if reason:
                self.summary.problems.append({"path": path, "result": result, "reason": reason})

    def _add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self.summary, name, getattr(self.summary, name) + amount)

    def _tick(self, force: bool = False) -> None:
        now = time.monotonic()
        self.summary.hashed_files, self.summary.hash_cache_hits = self.hasher.files_read, self.hasher.cache_hits
        if self.progress and (force or now - self.last_drawn > 0.2):
            self.last_drawn = now
            self.progress(self.summary, now - self.started)

    def _wait(self, futures: list[Future]) -> None:
        pending = set(futures)
        while pending and self.abort is None:
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            self._tick()

    # --- the run ---
    def run(self, roots: list[Path]) -> Summary:
        pool = ThreadPoolExecutor(self.options.parallel, thread_name_prefix="blobforge-send")
        self.parts = ThreadPoolExecutor(self.options.parallel, thread_name_prefix="blobforge-part")
        try:
            for path, relative in scan.iter_files(roots):
                if self.abort:
                    break
                self.summary.files += 1
                self._look(pool, path, relative)
                self._tick()
            self._wait(self.sends)
            # Pointers go last so one whose object is also in the tree counts as its duplicate.
            lfs = [
                pool.submit(self._guard, relative, self._send_pointer, path, relative, pointer)
                for path, relative, pointer in self._unseen_pointers()
            ]
            self._wait(lfs)
            extra = [
                pool.submit(self._guard, relative, self._send_extra_path, sha256, size, relative)
                for sha256, size, relative in self.extra_paths
            ]
            self._wait(extra)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.parts.shutdown(wait=True, cancel_futures=True)
        self._tick(force=True)
        self.elapsed = time.monotonic() - self.started
        if self.abort:
            raise IngestAborted(str(self.abort)) from self.abort
        return self.summary

    def _look(self, pool: ThreadPoolExecutor, path: Path, relative: str) -> None:
        try:
            kind = scan.sniff_file(path)
            if kind == "other":
                self._count("skipped", relative, "not a PDF (by its bytes)")
                return
            if kind == "lfs":
                pointer = scan.parse_lfs_pointer(path.read_bytes()[:2048])
                if pointer is None:
                    self._count("skipped", relative, "malformed Git LFS pointer")
                else:
                    self.pointers.append((path, relative, pointer))
                return
            sha256, size = self.hasher.digest(path)
        except OSError as exc:
            self._count("failed", relative, exc.strerror or str(exc))
            return
        self._add(bytes=size)
        if sha256 in self.seen:
            self.extra_paths.append((sha256, size, relative))
        else:
            self.seen.add(sha256)
            self.sends.append(pool.submit(self._guard, relative, self._send_document, sha256, size, relative, path))

    def _unseen_pointers(self) -> Iterator[tuple[Path, str, scan.LfsPointer]]:
        for path, relative, pointer in self.pointers:
            self._add(bytes=pointer.size)
            if pointer.sha256 in self.seen:
                self.extra_paths.append((pointer.sha256, pointer.size, relative))
            else:
                self.seen.add(pointer.sha256)
                yield path, relative, pointer

    def _guard(self, relative: str, send: Callable, *args) -> None:
        """Run one send; auth and connection problems stop the whole run, anything else fails one item."""
        if self.abort:
            return
        try:
            send(*args)
        except ApiError as exc:
            if exc.is_auth:
                self.abort = exc
            else:
                self._count("failed", relative, exc.detail)
        except ConnectionProblem as exc:
            self.abort = exc
        except OSError as exc:
            self._count("failed", relative, exc.strerror or str(exc))

    # --- one document ---
    def _known(self, sha256: str) -> bool:
        """Dry run: does the server already have a job for these bytes? (Read scope only, writes nothing.)"""
        page = self.client.call("GET", "jobs", params={"search": sha256, "type": self.options.job_type, "limit": 5})
        return any(job["sha256"] == sha256 for job in page["results"])

    def _declare(self, sha256: str, size: int, relative: str) -> dict:
        body = {"sha256": sha256, "size": size, "filename": Path(relative).name[:255], "path": relative[:1024]}
        return self.client.call("POST", "blobs", json=body)

    def _queue(self, sha256: str, relative: str) -> None:
        body = {
            "sha256": sha256,
            "type": self.options.job_type,
            "priority": self.options.priority,
            "filename": Path(relative).name[:255],
        }
        job = self.client.call("POST", "jobs", json=body)
        self._add(jobs_created=int(bool(job.get("created"))))

    def _send_document(self, sha256: str, size: int, relative: str, source: Path) -> None:
        if self.options.dry_run:
            self._count("duplicate" if self._known(sha256) else "new")
            return
        declared = self._declare(sha256, size, relative)
        if not declared["stored"]:
            self._upload(declared["upload"], sha256, size, source)
        self._queue(sha256, relative)
        self._count("duplicate" if declared["stored"] else "new")

    def _send_pointer(self, path: Path, relative: str, pointer: scan.LfsPointer) -> None:
        missing = (
            f"Git LFS pointer to {pointer.sha256[:12]}…; run `git lfs pull` (git-lfs unavailable or object missing)"
        )
        if self.options.dry_run:
            if self._known(pointer.sha256):
                self._count("duplicate")
            else:
                self._count("skipped", relative, missing)
            return
        declared = self._declare(pointer.sha256, pointer.size, relative)
        if not declared["stored"]:
            source = scan.materialise_lfs(path)
            if source is None:
                self._count("skipped", relative, missing)
                return
            try:
                sha256, size = scan.Hasher(use_cache=False).digest(source)
                if sha256 != pointer.sha256 or scan.sniff_file(source) != "pdf":
                    self._count("skipped", relative, "Git LFS object is not the PDF its pointer names")
                    return
                self._upload(declared["upload"], sha256, size, source)
            finally:
                source.unlink(missing_ok=True)
        self._queue(pointer.sha256, relative)
        self._count("duplicate" if declared["stored"] else "new")

    def _send_extra_path(self, sha256: str, size: int, relative: str) -> None:
        """Another path with bytes already sent in this run: tell the server (folders become tags)."""
        if not self.options.dry_run:
            self._declare(sha256, size, relative)
        self._count("duplicate")

    # --- bytes ---
    def _upload(self, signed: dict, sha256: str, size: int, source: Path) -> None:
        if not (size >= self.options.multipart_threshold and self._upload_multipart(sha256, size, source)):
            self.client.upload(signed, source)
        self._add(uploaded=1, uploaded_bytes=size)

    def _upload_multipart(self, sha256: str, size: int, source: Path) -> bool:
        """Parts in parallel to presigned URLs; False when the server's storage takes single PUTs only."""
        try:
            plan = self.client.call("POST", f"blobs/{sha256}/multipart", json={"part_size": self.options.part_size})
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        part_size, upload_id = plan["part_size"], plan["upload_id"]

        def send_part(part: dict) -> dict:
            offset = (part["number"] - 1) * part_size
            response = self.client.upload(part, source, offset, min(part_size, size - offset))
            return {"number": part["number"], "etag": response.headers.get("ETag", "")}

        try:
            done = list(self.parts.map(send_part, plan["parts"]))
            self.client.call(
                "POST",
                f"blobs/{sha256}/multipart/complete",
                json={"upload_id": upload_id, "parts": done},
                timeout=(10, 1800),
            )
        except BaseException:
            try:
                self.client.call("POST", f"blobs/{sha256}/multipart/abort", json={"upload_id": upload_id})
            except (ApiError, ConnectionProblem):
                pass
            raise
        return True
