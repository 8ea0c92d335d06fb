"""Long PDFs in page ranges, with a checkpoint on disk after each finished range.

A document over ``--chunk-pages`` pages is converted range by range. Each range is
written to ``<work dir>/checkpoints/<sha256>-<converter>-<chunk pages>/pages-AAAA-BBBB/``
(first through last page, 1-based) and only renamed there, from ``….partial``, once it
is complete; so after a crash, a ``kill -9`` or a lost lease, the next attempt on this
work dir starts at the first page no finished range covers. The ranges are then merged
into one ``content.md`` whose assets are prefixed by their range (``p0011-…``), so two
ranges may use the same image name without overwriting each other.
"""

import json
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pdf_worker.converters import ASSETS_DIR, MARKDOWN_NAME

CHECKPOINTS_DIR = "checkpoints"
RECORD_NAME = "range.json"
PARTIAL = ".partial"
RANGE_DIR = re.compile(r"^pages-(\d{4,})-(\d{4,})$")
ASSET_LINK = re.compile(r"(\]\(\s*<?|\bsrc=[\"'])" + ASSETS_DIR + r"/([^)\s>\"']+)")
STALE_SECONDS = 7 * 24 * 3600
"""Checkpoints nobody came back for (the job went to another worker, or died) are removed after this."""


def plan(page_count: int, chunk_pages: int) -> list[range]:
    """The page ranges (0-based) a document of ``page_count`` pages is converted in."""
    return [range(start, min(start + chunk_pages, page_count)) for start in range(0, page_count, chunk_pages)]


@dataclass
class FinishedRange:
    pages: range
    path: Path
    record: dict


class Checkpoint:
    """The finished ranges of one document, for one converter and one chunk size."""

    def __init__(self, work_dir: Path, sha256: str, converter: str, chunk_pages: int):
        self.path = work_dir / CHECKPOINTS_DIR / f"{sha256}-{converter}-{chunk_pages}"

    def finished(self, page_count: int) -> list[FinishedRange]:
        """Finished ranges that follow each other from page 1 (anything after a gap is redone)."""
        found: dict[int, FinishedRange] = {}
        for folder in self.path.glob("pages-*") if self.path.is_dir() else ():
            match = RANGE_DIR.match(folder.name)
            if not match or not (folder / RECORD_NAME).is_file():
                continue
            record = json.loads((folder / RECORD_NAME).read_text())
            if record.get("page_count") != page_count:
                continue  # another document under the same name: never mix them
            pages = range(int(match[1]) - 1, int(match[2]))
            found[pages.start] = FinishedRange(pages, folder, record)
        chain, start = [], 0
        while start in found:
            chain.append(found[start])
            start = found[start].pages.stop
        return chain

    def begin(self, pages: range) -> Path:
        """An empty folder to convert ``pages`` into."""
        partial = self.path / (_name(pages) + PARTIAL)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        return partial

    def finish(self, partial: Path, pages: range, record: dict) -> FinishedRange:
        """Record the range and make it visible to later attempts (rename is atomic)."""
        record = record | {"finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
        (partial / RECORD_NAME).write_text(json.dumps(record, default=str))
        final = self.path / _name(pages)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        return FinishedRange(pages, final, record)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _name(pages: range) -> str:
    return f"pages-{pages.start + 1:04d}-{pages.stop:04d}"


def merge(ranges: list[FinishedRange], out_dir: Path) -> dict:
    """Write one ``content.md`` and ``assets/`` from the ranges; returns their merged metadata.

    Each range's assets are renamed ``p<first page>-<name>`` and its links rewritten to
    match. Metadata lists (marker's table of contents, page stats) are concatenated in
    page order; other values are taken from the first range that has them.
    """
    assets = out_dir / ASSETS_DIR
    assets.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    metadata: dict = {}
    for finished in ranges:
        prefix = f"p{finished.pages.start + 1:04d}-"
        source_assets = finished.path / ASSETS_DIR
        renamed = {}
        for asset in sorted(source_assets.iterdir()) if source_assets.is_dir() else ():
            if asset.is_file() and not asset.is_symlink():
                renamed[asset.name] = prefix + asset.name
                shutil.copyfile(asset, assets / renamed[asset.name])
        markdown = (finished.path / MARKDOWN_NAME).read_text(encoding="utf-8")
        markdown = ASSET_LINK.sub(
            lambda m, renamed=renamed: f"{m[1]}{ASSETS_DIR}/{renamed.get(m[2], m[2])}",
            markdown,
        )
        parts.append(markdown.strip("\n"))
        for key, value in (finished.record.get("metadata") or {}).items():
            if isinstance(value, list):
                metadata.setdefault(key, []).extend(value)
            else:
                metadata.setdefault(key, value)
    (out_dir / MARKDOWN_NAME).write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return metadata


def sweep(work_dir: Path) -> None:
    """At start-up: drop half-written ranges, and checkpoints untouched for a week."""
    root = work_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return
    now = time.time()
    for checkpoint in root.iterdir():
        for partial in checkpoint.glob("*" + PARTIAL):
            shutil.rmtree(partial, ignore_errors=True)
        if now - checkpoint.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(checkpoint, ignore_errors=True)
