"""Looking at local files: content detection by bytes, sha256 (cached in xattrs), Git LFS pointers, tags.

The one copy of these rules: ``jobs/ingest.py`` (``manage.py ingest``) imports them from here,
so ``blobforge ingest`` and the server agree on what a document is. No Django here.
"""

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

READ_SIZE = 1024 * 1024
PDF_MAGIC = b"%PDF-"
LFS_HEADER = b"version https://git-lfs.github.com/spec/v1"
LFS_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.M)
LFS_SIZE = re.compile(rb"^size (\d+)$", re.M)
XATTR_SHA256 = "user.checksum.sha256"
XATTR_MTIME = "user.checksum.mtime"


@dataclass
class IngestCounts:
    """What happened to the files of one ingest; ``--json`` prints ``as_dict()`` (server and client alike)."""

    new: int = 0
    duplicate: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    jobs_created: int = 0
    problems: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["problems"] = data["problems"][:1000]
        return data


@dataclass(frozen=True)
class LfsPointer:
    sha256: str
    size: int


def sniff(head: bytes) -> str:
    """'pdf', 'lfs' or 'other', from the first bytes (PDF allows junk before %PDF- in the first KiB)."""
    if PDF_MAGIC in head[:1024]:
        return "pdf"
    if head.startswith(LFS_HEADER):
        return "lfs"
    return "other"


def sniff_file(path: Path) -> str:
    with path.open("rb") as handle:
        return sniff(handle.read(1024))


def parse_lfs_pointer(data: bytes) -> LfsPointer | None:
    oid, size = LFS_OID.search(data), LFS_SIZE.search(data)
    if not oid or not size:
        return None
    return LfsPointer(oid.group(1).decode(), int(size.group(1)))


def tags_for(relative_path: str) -> list[str]:
    """The folders a file sits in, outermost first: ``reports/2024/q1.pdf`` → ``[reports, 2024]``."""
    parts = PurePosixPath(relative_path).parts[:-1]
    return [part for part in parts if part not in ("", ".", "..", "/")][:32]


def iter_files(roots: list[Path]) -> Iterator[tuple[Path, str]]:
    """Yield ``(file, path relative to its root)`` for every file under the roots (no .git, no symlinks).

    Folders are listed with ``os.scandir`` (no extra stat per file) and relative paths are
    joined as strings: on many small files pathlib's arithmetic costs more than hashing.
    """
    for root in roots:
        if root.is_file():
            yield root, root.name
            continue
        yield from _walk(root, "")


def _walk(folder: Path, relative: str) -> Iterator[tuple[Path, str]]:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) or entry.is_symlink() or entry.name.endswith(".lfs-materialised"):
            continue
        yield Path(entry.path), relative + entry.name  # sockets and the like fail when opened, and are counted
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".git"):
            yield from _walk(Path(entry.path), f"{relative}{entry.name}/")


class Hasher:
    """sha256 of files in 1 MiB reads, remembered in extended attributes next to the mtime.

    A file whose ``user.checksum.mtime`` still equals its mtime (nanoseconds) is not read
    again. Filesystems without user xattrs (or read-only files) simply get hashed each time.
    """

    def __init__(self, use_cache: bool = True):
        self.use_cache = use_cache
        self.files_read = 0
        self.bytes_read = 0
        self.cache_hits = 0
        # One read buffer for all files: zeroing a fresh 1 MiB per file costs more than
        # hashing a small file.
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)

    def digest(self, path: Path) -> tuple[str, int]:
        # One open file for stat, cache and bytes: on small files the path lookups of
        # stat/getxattr/setxattr by name cost more than hashing the bytes.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            stat = os.fstat(fd)
            if self.use_cache and (cached := _cached(fd, stat.st_mtime_ns)):
                self.cache_hits += 1
                return cached, stat.st_size
            sha256, size = self._hash(fd)
            if self.use_cache:
                _remember(fd, sha256, stat.st_mtime_ns)
            return sha256, size
        finally:
            os.close(fd)

    def _hash(self, fd: int) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        while read := os.readv(fd, [self._buffer]):
            hasher.update(self._view[:read])
            size += read
        self.files_read += 1
        self.bytes_read += size
        return hasher.hexdigest(), size


def _cached(fd: int, mtime_ns: int) -> str | None:
    try:
        sha256 = os.getxattr(fd, XATTR_SHA256).decode()
        mtime = os.getxattr(fd, XATTR_MTIME).decode()
    except (OSError, AttributeError, UnicodeDecodeError):
        return None
    if mtime != str(mtime_ns) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        return None
    return sha256


def _remember(fd: int, sha256: str, mtime_ns: int) -> None:
    """Best effort: setting xattrs does not change the mtime, so the cache stays valid."""
    try:
        os.setxattr(fd, XATTR_SHA256, sha256.encode())
        os.setxattr(fd, XATTR_MTIME, str(mtime_ns).encode())
    except (OSError, AttributeError):
        pass


def materialise_lfs(pointer_path: Path) -> Path | None:
    """Ask ``git lfs smudge`` for the real bytes; None when git-lfs or the object is unavailable."""
    git = shutil.which("git")
    if not git or subprocess.run([git, "lfs", "version"], capture_output=True).returncode != 0:
        return None
    target = pointer_path.with_name(f".{pointer_path.name}.lfs-materialised")
    with target.open("wb") as out:
        done = subprocess.run(
            [git, "lfs", "smudge", "--", pointer_path.name],
            input=pointer_path.read_bytes(),
            stdout=out,
            stderr=subprocess.DEVNULL,
            cwd=pointer_path.parent,
        )
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        return None
    return target
