"""The output zip: ``content.md``, the ``assets/…`` the Markdown links to, and ``meta.json``.

Member names are built here from a fixed pattern (``assets/<one safe file name>``), so
the zip never holds an absolute path, a ``..`` or a file the Markdown does not use.
"""

import hashlib
import json
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import unquote

from pdf_worker.converters import ASSETS_DIR, MARKDOWN_NAME

META_NAME = "meta.json"
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|\bsrc=[\"']([^\"']+)[\"']")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
PRECOMPRESSED = {".jpg", ".jpeg", ".png", ".jp2", ".gif", ".webp"}


def linked_assets(markdown: str) -> set[str]:
    """Names of files under ``assets/`` that the Markdown links to (images or links)."""
    names = set()
    for match in LINK_TARGET.finditer(markdown):
        target = unquote(match.group(1) or match.group(2) or "")
        folder, _, name = target.partition("/")
        if folder == ASSETS_DIR and SAFE_NAME.match(name) and ".." not in name:
            names.add(name)
    return names


def build(out_dir: Path, zip_path: Path, meta: dict) -> tuple[int, str]:
    """Write the zip; returns its ``(size, sha256)``. Adds the packaging time to ``meta["seconds"]``."""
    started = time.monotonic()
    markdown = (out_dir / MARKDOWN_NAME).read_text(encoding="utf-8")
    assets = out_dir / ASSETS_DIR
    members = sorted(
        name for name in linked_assets(markdown) if (assets / name).is_file() and not (assets / name).is_symlink()
    )
    meta = meta | {"assets": [f"{ASSETS_DIR}/{name}" for name in members]}
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MARKDOWN_NAME, markdown)
        for name in members:
            stored = Path(name).suffix.lower() in PRECOMPRESSED
            archive.write(assets / name, f"{ASSETS_DIR}/{name}", compress_type=zipfile.ZIP_STORED if stored else None)
        meta["seconds"] = meta.get("seconds", {}) | {"package": round(time.monotonic() - started, 3)}
        archive.writestr(META_NAME, json.dumps(meta, indent=2, ensure_ascii=False))
    hasher = hashlib.sha256()
    with zip_path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            hasher.update(chunk)
    return zip_path.stat().st_size, hasher.hexdigest()
