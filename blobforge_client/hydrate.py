"""``blobforge hydrate``: put ``<stem>.md`` and ``<stem>.assets/`` beside each converted PDF.

The output zip is checked member by member before anything is written: absolute paths,
``..``, symlinks and anything outside ``content.md``/``meta.json``/``assets/`` refuse the
whole archive. Files are assembled in a hidden staging folder beside the PDF and renamed
into place (assets first, the Markdown last), so a reader never sees half a result.
"""

import os
import re
import shutil
import stat
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from blobforge_client import scan
from blobforge_client.http import ApiError, Client
from blobforge_client.lookup import job_for

ASSET_LINK = re.compile(r"""(\]\(\s*<?|src=["'])(?:\./)?assets/""")
MAX_UNPACKED = 4 * 1024**3


class UnsafeArchive(Exception):
    """The output zip holds a member that could write outside its folder."""


@dataclass
class HydrateSummary:
    written: int = 0
    skipped: int = 0
    not_ready: int = 0
    failed: int = 0
    problems: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "written": self.written,
            "skipped": self.skipped,
            "not_ready": self.not_ready,
            "failed": self.failed,
            "problems": self.problems[:1000],
        }


def check_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Every member, or UnsafeArchive naming the first one that is not a plain file or folder inside the archive."""
    members, unpacked = [], 0
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        mode = info.external_attr >> 16
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            raise UnsafeArchive(f"archive member {name!r} has an absolute path")
        if ".." in parts:
            raise UnsafeArchive(f"archive member {name!r} climbs out of its folder (..)")
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"archive member {name!r} is a symbolic link")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # many zips set no type bits
            raise UnsafeArchive(f"archive member {name!r} is not a regular file")
        if not parts or not (parts == ("content.md",) or parts == ("meta.json",) or parts[0] == "assets"):
            raise UnsafeArchive(f"archive member {name!r} is not content.md, meta.json or under assets/")
        unpacked += info.file_size
        if unpacked > MAX_UNPACKED:
            raise UnsafeArchive("archive unpacks to more than 4 GiB")
        members.append(info)
    if "content.md" not in {info.filename for info in members}:
        raise UnsafeArchive("archive has no content.md")
    return members


def unpack(archive_path: Path, pdf: Path) -> None:
    """Write ``<stem>.md`` and ``<stem>.assets/`` beside ``pdf`` from a checked output zip."""
    markdown_target, assets_target = pdf.with_suffix(".md"), pdf.with_name(f"{pdf.stem}.assets")
    staging = Path(tempfile.mkdtemp(prefix=f".{pdf.stem}.hydrate-", dir=pdf.parent))
    try:
        with zipfile.ZipFile(archive_path) as archive:
            for info in check_members(archive):
                if info.is_dir() or info.filename == "meta.json":
                    continue
                target = staging.joinpath(*PurePosixPath(info.filename).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
        markdown = (staging / "content.md").read_text(encoding="utf-8", errors="replace")
        (staging / "content.md").write_text(
            ASSET_LINK.sub(rf"\g<1>{quote(pdf.stem)}.assets/", markdown), encoding="utf-8"
        )
        if assets_target.exists():  # --force, or left by a run that stopped before writing the Markdown
            os.replace(assets_target, staging / "previous-assets")
        if (staging / "assets").is_dir():
            os.replace(staging / "assets", assets_target)
        os.replace(staging / "content.md", markdown_target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class Hydrate:
    def __init__(
        self, client: Client, *, job_type: str = "pdf", force: bool = False, parallel: int = 4, use_xattrs: bool = True
    ):
        self.client, self.job_type, self.force, self.parallel = client, job_type, force, parallel
        self.hasher = scan.Hasher(use_cache=use_xattrs)
        self.summary = HydrateSummary()

    def run(self, roots: list[Path]) -> HydrateSummary:
        pdfs = [path for path, _ in scan.iter_files(roots) if self._is_pdf(path)]
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="blobforge-hydrate") as pool:
            for pdf, (result, reason) in zip(pdfs, pool.map(self._one, pdfs), strict=True):
                setattr(self.summary, result, getattr(self.summary, result) + 1)
                if reason:
                    self.summary.problems.append({"path": str(pdf), "result": result, "reason": reason})
        return self.summary

    @staticmethod
    def _is_pdf(path: Path) -> bool:
        try:
            return scan.sniff_file(path) == "pdf"
        except OSError:
            return False

    def _one(self, pdf: Path) -> tuple[str, str]:
        """('written' | 'skipped' | 'not_ready' | 'failed', why). Auth and connection errors propagate."""
        if pdf.with_suffix(".md").exists() and not self.force:
            return "skipped", ""
        try:
            sha256, _ = self.hasher.digest(pdf)
            job = job_for(self.client, sha256, self.job_type)
            if job is None:
                return "failed", "no job for this PDF on the server (ingest it first)"
            if job["status"] in ("pending", "running"):
                return "not_ready", f"job {job['id']} is {job['status']}"
            if job["status"] != "done":
                return "failed", f"job {job['id']} is {job['status']}: {job.get('last_error') or 'no error recorded'}"
            output = self.client.call("GET", f"jobs/{job['id']}").get("output")
            if not output:
                return "failed", f"job {job['id']} is done but has no output"
            with tempfile.NamedTemporaryFile(dir=pdf.parent, prefix=f".{pdf.stem}.", suffix=".zip") as download:
                self.client.download(output["url"], download)
                download.flush()
                unpack(Path(download.name), pdf)
        except ApiError as exc:
            if exc.is_auth:
                raise
            return "failed", exc.detail
        except (UnsafeArchive, zipfile.BadZipFile) as exc:
            return "failed", f"refused the output archive: {exc}"
        except OSError as exc:
            return "failed", exc.strerror or str(exc)
        return "written", ""
