"""Ingest: ``manage.py ingest`` of many small files and of large PDFs, against bare hashlib.

Two data sets are generated in a temporary folder and deleted afterwards: 10,000 small
PDF-looking files (2–8 KiB) and 2 GB of large ones (64 MiB each). ``--tiny`` uses 300
small files and 64 MiB in 4 files. Files are fresh for every run: the ingest caches
hashes in the ``user.checksum.sha256`` xattr, so a second run over the same files would
not read them again.

For each set, with the files already in the page cache (read once beforehand, so neither
side pays for the disk):

* bare hashlib — the ceiling: sha256 in 1 MiB reads, a plain loop in this process;
* the ingest's hashing code alone (``blobforge_client.scan.Hasher``: 1 MiB reads) — hashing
  throughput, the target: at least 80 % of bare hashlib — three times: with the xattr
  cache off, on first sight (hashing and writing the cache: two ``setxattr`` calls per
  file), and on a second pass answered from the cache;
* ``ingest --dry-run`` — BlobForge's scan: sniffing, hashing, a duplicate lookup per file;
* ``ingest`` — the whole thing: also storing the bytes (local storage under the data
  dir), blob rows, paths and jobs.

The ingest command runs through ``call_command`` inside ``manage.py shell`` and is timed
there, so Django's start-up (seconds on a busy machine, not growing with the data) is left out.
"""

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import bench_server, parse_args, report

from blobforge_client.scan import Hasher

CHUNK = 1024 * 1024


def make_small(folder: Path, count: int) -> int:
    """``count`` distinct PDF-looking files of 2–8 KiB in 100 sub-folders (tags); returns bytes written."""
    total = 0
    for i in range(count):
        sub = folder / f"batch{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        data = b"%PDF-1.4\n" + os.urandom(2048 + (i * 613) % 6144) + b"\n%%EOF\n"
        (sub / f"doc{i:05d}.pdf").write_bytes(data)
        total += len(data)
    return total


def make_large(folder: Path, total_bytes: int, file_bytes: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    block = os.urandom(CHUNK)
    for i in range(max(total_bytes // file_bytes, 1)):
        with (folder / f"large{i:03d}.pdf").open("wb") as out:
            out.write(b"%PDF-1.4\n" + os.urandom(64))  # distinct from the first bytes on
            for _ in range(file_bytes // CHUNK):
                out.write(block)
            out.write(b"\n%%EOF\n")
        written += file_bytes + 80
    return written


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def warm(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while handle.read(CHUNK):
                pass


def bare_hashlib(paths: list[Path]) -> tuple[float, int]:
    started = time.perf_counter()
    total = 0
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb", buffering=0) as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                total += len(chunk)
        digest.hexdigest()
    return time.perf_counter() - started, total


def scan_hasher(paths: list[Path], use_cache: bool = True) -> float:
    """The ingest's own hashing code (``blobforge_client.scan.Hasher``) without the database."""
    hasher = Hasher(use_cache=use_cache)
    started = time.perf_counter()
    for path in paths:
        hasher.digest(path)
    return time.perf_counter() - started


def clear_xattrs(paths: list[Path]) -> None:
    for path in paths:
        for name in ("user.checksum.sha256", "user.checksum.mtime"):
            try:
                os.removexattr(path, name)
            except OSError:
                pass


TIMED_INGESTS = """
import io, os, time
from pathlib import Path
from django.core.management import call_command


def timed(*extra):
    started = time.perf_counter()
    call_command("ingest", {folder!r}, "--no-progress", *extra, stdout=io.StringIO())
    return time.perf_counter() - started


dry = timed("--dry-run")
# The dry run cached every hash in xattrs: the real ingest must read the files again.
for path in Path({folder!r}).rglob("*.pdf"):
    for name in ("user.checksum.sha256", "user.checksum.mtime"):
        try:
            os.removexattr(path, name)
        except OSError:
            pass
print(dry, timed())
"""


def timed_ingests(server, folder: Path) -> tuple[float, float]:
    """Seconds of ``ingest --dry-run`` and of ``ingest``, timed inside ``manage.py shell``
    (one Django start-up for both, and none of it in the timings)."""
    dry, full = server.shell(TIMED_INGESTS.format(folder=str(folder))).strip().splitlines()[-1].split()
    return float(dry), float(full)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    small_count = 300 if args.tiny else 10_000
    large_total, large_file = (64 * CHUNK, 16 * CHUNK) if args.tiny else (2 * 1024**3, 64 * CHUNK)
    rows, notes = [], []
    workdir = Path(tempfile.mkdtemp(prefix="bf-bench-ingest-"))
    try:
        with bench_server() as server:
            sets = [
                (f"{small_count:,} small files", lambda d: make_small(d, small_count)),
                (f"{large_total / 1024**3:.2g} GiB of large PDFs", lambda d: make_large(d, large_total, large_file)),
            ]
            for label, make in sets:
                folder = workdir / "data"
                size = make(folder)
                paths = files(folder)
                warm(paths)
                bare_s, bare_bytes = bare_hashlib(paths)
                plain_s = scan_hasher(paths, use_cache=False)
                hasher_s = scan_hasher(paths)  # first sight: hashes and writes the xattr cache
                cached_s = scan_hasher(paths)  # a second ingest: answered from the cache
                clear_xattrs(paths)
                dry_s, full_s = timed_ingests(server, folder)
                mb = size / 1e6
                rows.append(
                    [
                        label,
                        f"{mb:,.0f}",
                        f"{mb / bare_s:,.0f} MB/s ({len(paths) / bare_s:,.0f} files/s)",
                        f"{100 * bare_s / plain_s:.0f} %",
                        f"{mb / hasher_s:,.0f} MB/s ({len(paths) / hasher_s:,.0f} files/s)",
                        f"{100 * bare_s / hasher_s:.0f} %",
                        f"{100 * bare_s / cached_s:.0f} %",
                        f"{mb / dry_s:,.0f} MB/s ({len(paths) / dry_s:,.0f} files/s)",
                        f"{100 * bare_s / dry_s:.0f} %",
                        f"{mb / full_s:,.0f} MB/s ({len(paths) / full_s:,.0f} files/s)",
                        f"{100 * bare_s / full_s:.0f} %",
                        f"{os.getloadavg()[0]:.1f}",
                    ]
                )
                shutil.rmtree(folder)
                # The stored copies under the data dir go too (they are as large as the set).
                shutil.rmtree(server.data_dir / "storage", ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(
        args,
        "Ingest throughput",
        [
            "set",
            "MB",
            "bare hashlib",
            "Hasher, no cache, vs bare",
            "Hasher, writing the cache",
            "vs bare",
            "Hasher, from the cache, vs bare",
            "ingest --dry-run (scan)",
            "vs bare",
            "ingest (store + queue)",
            "vs bare",
            "load 1m",
        ],
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
