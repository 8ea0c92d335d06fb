"""Getting results out: ``<name>.md`` plus ``<name>.assets/`` per finished document.

Files are written under the destination at the paths the documents were ingested
from (``reports/2024/q1.pdf`` → ``reports/2024/q1.md``). Stored paths and archive
members are untrusted input: ``..``, absolute paths and odd member names are dropped,
and every target is checked to resolve inside the destination before it is written.
"""

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from jobs import storage
from jobs.models import BlobPath, Job, JobStatus

ASSET_MEMBER = re.compile(r"^assets/([A-Za-z0-9][A-Za-z0-9._-]{0,200})$")
ASSET_LINK = re.compile(r"(\]\(\s*<?)assets/([A-Za-z0-9][A-Za-z0-9._-]{0,200})")
SPOOL_BYTES = 64 * 1024 * 1024


@dataclass
class ExportSummary:
    documents: int = 0
    files: int = 0
    assets: int = 0
    problems: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "documents": self.documents,
            "files": self.files,
            "assets": self.assets,
            "problems": self.problems[:1000],
        }


def safe_relative(path: str) -> PurePosixPath | None:
    """``path`` with every empty, ``.``, ``..`` and root part removed (None when nothing is left)."""
    parts = [part for part in PurePosixPath(path.replace("\\", "/")).parts if part not in ("", ".", "..", "/")]
    return PurePosixPath(*parts) if parts else None


def _targets(relative: PurePosixPath, dest: Path) -> tuple[Path, Path, str]:
    """``(markdown file, assets folder, assets folder name)`` for one document path."""
    stem = relative.with_suffix("") if relative.suffix.lower() == ".pdf" else relative
    markdown = dest.joinpath(*stem.parts).with_name(stem.name + ".md")
    return markdown, markdown.with_name(stem.name + ".assets"), stem.name + ".assets"


def _inside(path: Path, dest: Path) -> bool:
    return path.resolve().is_relative_to(dest)


def _document_paths(job: Job, prefix: str, tag: str) -> list[str]:
    rows = BlobPath.objects.filter(blob_id=job.blob_id).order_by("id")
    if prefix:
        rows = rows.filter(path__startswith=prefix)
    paths = [row.path for row in rows if not tag or tag in (row.tags or [])]
    if not paths and not prefix and not tag:
        paths = [job.filename or f"{job.blob_id}.pdf"]
    return paths


def export(dest: Path, *, prefix: str = "", tag: str = "", job_type: str = "pdf") -> ExportSummary:
    """Write every finished document matching the filters under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    prefix = str(safe_relative(prefix) or "") if prefix else ""
    summary = ExportSummary()
    latest: dict[str, Job] = {}
    for job in Job.objects.filter(status=JobStatus.DONE, type=job_type).exclude(output_key="").order_by("finished_at"):
        latest[job.blob_id] = job  # a forced re-conversion replaces the earlier output
    for job in latest.values():
        paths = _document_paths(job, prefix, tag)
        if not paths:
            continue
        try:
            with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
                with storage.backend().open(job.output_key) as stored:
                    shutil.copyfileobj(stored, spool)
                spool.seek(0)
                with zipfile.ZipFile(spool) as archive:
                    for path in paths:
                        _write_document(archive, path, job, dest, summary)
        except (OSError, zipfile.BadZipFile, KeyError, storage.StorageError) as exc:
            summary.problems.append({"job": job.pk, "path": paths[0], "reason": f"output unreadable: {exc}"})
    return summary


def _write_document(archive: zipfile.ZipFile, path: str, job: Job, dest: Path, summary: ExportSummary) -> None:
    relative = safe_relative(path) or PurePosixPath(f"{job.blob_id}.pdf")
    markdown_path, assets_path, assets_name = _targets(relative, dest)
    if not all(_inside(target, dest) for target in (markdown_path, assets_path)):
        summary.problems.append({"job": job.pk, "path": path, "reason": "resolves outside the destination"})
        return
    members = {}
    for member in archive.namelist():
        match = ASSET_MEMBER.match(member)
        if match:
            members[match.group(1)] = member
        elif member not in ("content.md", "meta.json"):
            summary.problems.append({"job": job.pk, "path": path, "reason": f"archive member {member!r} skipped"})
    markdown = archive.read("content.md").decode("utf-8", "replace")
    markdown = ASSET_LINK.sub(lambda m: f"{m.group(1)}{quote(assets_name)}/{m.group(2)}", markdown)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(markdown, encoding="utf-8")
    summary.documents += 1
    summary.files += 1
    if members:
        assets_path.mkdir(exist_ok=True)
        for name, member in members.items():
            if _inside(assets_path / name, dest):  # not through a symlink planted in the destination
                (assets_path / name).write_bytes(archive.read(member))
                summary.assets += 1
