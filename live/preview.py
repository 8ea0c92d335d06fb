"""Console helpers that read a job's objects from storage: download links and the Markdown preview."""

import zipfile

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

from jobs import storage
from jobs.models import Job

LINK_SECONDS = 600
PREVIEW_MAX_ZIP_BYTES = 64 * 1024 * 1024
PREVIEW_MAX_MARKDOWN_BYTES = 256 * 1024


def download_links(job: Job) -> dict[str, str]:
    """Short-lived signed GET URLs for the source and (when done) the output zip."""
    backend = storage.backend()
    links = {"source": backend.presigned_get(storage.source_key(job.blob_id), LINK_SECONDS).url}
    if job.output_key:
        links["output"] = backend.presigned_get(job.output_key, LINK_SECONDS).url
    return links


def markdown_preview(job: Job) -> SafeString | str:
    """The output's content.md rendered and sanitised, or a sentence saying why there is none."""
    if not job.output_key:
        return "No output yet."
    if job.output_size and job.output_size > PREVIEW_MAX_ZIP_BYTES:
        return f"The output is {job.output_size} bytes; download it to read it."
    try:
        with storage.backend().open(job.output_key) as handle, zipfile.ZipFile(handle) as archive:
            with archive.open("content.md") as member:
                raw = member.read(PREVIEW_MAX_MARKDOWN_BYTES + 1)
    except KeyError:
        return "The output has no content.md."
    except (OSError, zipfile.BadZipFile, storage.StorageError) as exc:
        return f"The output could not be read: {exc}"
    truncated = len(raw) > PREVIEW_MAX_MARKDOWN_BYTES
    html = markdown.markdown(raw[:PREVIEW_MAX_MARKDOWN_BYTES].decode("utf-8", "replace"), extensions=["tables"])
    # Images point into the zip's assets/, which a browser cannot fetch: keep the alt text only.
    clean = nh3.clean(html, tags=nh3.ALLOWED_TAGS - {"img"})
    if truncated:
        clean += "<p><em>… preview cut at 256 KiB; download the output for the rest.</em></p>"
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
