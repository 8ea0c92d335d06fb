"""manage.py ingest over a real directory tree: counts are right and nothing is queued twice."""

import hashlib
import json
import socket
from io import StringIO

import pytest
from django.core.management import call_command

from jobs import storage
from jobs.models import Blob, BlobPath, Job

pytestmark = pytest.mark.django_db(transaction=True)


def pdf(n: int) -> bytes:
    return b"%PDF-1.5\n%" + f"document number {n}".encode() + b"\n%%EOF\n"


def lfs_pointer(data: bytes) -> bytes:
    return (
        b"version https://git-lfs.github.com/spec/v1\noid sha256:"
        + hashlib.sha256(data).hexdigest().encode()
        + b"\nsize "
        + str(len(data)).encode()
        + b"\n"
    )


def ingest(*args) -> dict:
    out = StringIO()
    try:
        call_command("ingest", *map(str, args), "--json", "--no-progress", stdout=out)
    except SystemExit as exit:
        assert exit.code == 1, "ingest exits 1 when some files failed"
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "library"
    (root / "reports" / "2024").mkdir(parents=True)
    (root / "scans").mkdir()
    (root / "reports" / "2024" / "q1.pdf").write_bytes(pdf(1))
    (root / "reports" / "2024" / "q2.PDF").write_bytes(pdf(2))
    (root / "scans" / "copy-of-q1.pdf").write_bytes(pdf(1))  # duplicate content, another path
    (root / "scans" / "disguised.txt").write_bytes(pdf(3))  # a PDF by its bytes, whatever its name
    (root / "notes.pdf").write_bytes(b"<html>not a pdf</html>")  # not a PDF, whatever its name
    (root / "readme.md").write_text("# hello")
    (root / "reports" / "q1.pdf.lfs").write_bytes(lfs_pointer(pdf(1)))  # LFS pointer to a known blob
    (root / "reports" / "missing.pdf").write_bytes(lfs_pointer(pdf(99)))  # LFS pointer to bytes we lack
    unreadable = socket.socket(socket.AF_UNIX)
    unreadable.bind(str(root / "scans" / "socket.pdf"))  # opening a socket file fails, even for root
    yield root
    unreadable.close()


def test_ingest_counts_each_kind_of_file(tree):
    summary = ingest(tree)
    assert summary["new"] == 3, summary  # q1, q2, disguised.txt
    assert summary["duplicate"] == 2, summary  # copy-of-q1 and the LFS pointer to q1
    assert summary["skipped"] == 3, summary  # notes.pdf (html), readme.md, missing LFS object
    assert summary["failed"] == 1, summary  # the socket
    assert Job.objects.count() == 3 and Blob.objects.count() == 3
    reasons = {p["path"]: p["reason"] for p in summary["problems"]}
    assert "not a PDF" in reasons["notes.pdf"]
    assert "LFS" in reasons["reports/missing.pdf"]
    assert "scans/socket.pdf" in reasons


def test_ingest_stores_bytes_under_their_sha256_and_tags_paths(tree):
    ingest(tree)
    sha = hashlib.sha256(pdf(1)).hexdigest()
    with storage.backend().open(storage.source_key(sha)) as stored:
        assert stored.read() == pdf(1)
    paths = dict(BlobPath.objects.filter(blob_id=sha).values_list("path", "tags"))
    assert paths["reports/2024/q1.pdf"] == ["reports", "2024"]
    assert paths["scans/copy-of-q1.pdf"] == ["scans"]
    assert "reports/q1.pdf.lfs" in paths


def test_second_ingest_queues_nothing_new(tree):
    ingest(tree)
    again = ingest(tree)
    assert again["new"] == 0 and again["duplicate"] == 5 and again["jobs_created"] == 0
    assert Job.objects.count() == 3


def test_dry_run_stores_and_queues_nothing(tree):
    summary = ingest(tree, "--dry-run")
    assert summary["dry_run"] is True and summary["new"] == 3
    assert Job.objects.count() == 0 and Blob.objects.count() == 0


def test_priority_and_type_options_reach_the_jobs(tmp_path):
    (tmp_path / "a.pdf").write_bytes(pdf(7))
    out = StringIO()
    call_command("ingest", str(tmp_path), "--priority", "1", "--no-progress", stdout=out)
    assert Job.objects.get().priority == 1
    assert "new 1" in out.getvalue()


def test_a_tree_larger_than_one_batch_is_queued_whole_with_its_history(tmp_path, monkeypatch):
    from jobs.ingest import Ingester
    from jobs.models import JobEvent

    monkeypatch.setattr(Ingester, "BATCH_FILES", 4)  # ten documents and a duplicate span three batches
    for n in range(10):
        (tmp_path / f"folder{n % 3}").mkdir(exist_ok=True)
        (tmp_path / f"folder{n % 3}" / f"doc{n}.pdf").write_bytes(pdf(100 + n))
    (tmp_path / "folder9").mkdir()
    (tmp_path / "folder9" / "copy-of-doc0.pdf").write_bytes(pdf(100))  # met last: a duplicate

    summary = ingest(tmp_path)

    assert (summary["new"], summary["duplicate"], summary["jobs_created"]) == (10, 1, 10), summary
    assert Job.objects.count() == 10 and Blob.objects.filter(stored=True).count() == 10
    assert BlobPath.objects.count() == 11
    assert set(Job.objects.values_list("filename", flat=True)) == {f"doc{n}.pdf" for n in range(10)}
    assert JobEvent.objects.filter(to_status="pending", actor="cli").count() == 10


def test_a_document_storage_refuses_fails_alone_and_is_not_queued(tmp_path, monkeypatch):
    (tmp_path / "good.pdf").write_bytes(pdf(200))
    (tmp_path / "refused.pdf").write_bytes(pdf(201))
    refused = hashlib.sha256(pdf(201)).hexdigest()
    real_save = type(storage.backend()).save

    def save(self, key, stream, **kwargs):
        if refused in key:
            raise storage.StorageError("local storage could not write it: No space left on device", 507)
        return real_save(self, key, stream, **kwargs)

    monkeypatch.setattr(type(storage.backend()), "save", save)
    summary = ingest(tmp_path)

    assert (summary["new"], summary["failed"], summary["jobs_created"]) == (1, 1, 1), summary
    assert summary["problems"] == [
        {
            "path": "refused.pdf",
            "result": "failed",
            "reason": "local storage could not write it: No space left on device",
        }
    ]
    assert list(Job.objects.values_list("filename", flat=True)) == ["good.pdf"]
    assert not Blob.objects.get(sha256=refused).stored  # a later ingest stores and queues it
    monkeypatch.undo()
    assert ingest(tmp_path)["new"] == 1 and Job.objects.count() == 2


def test_submit_queues_one_file_and_refuses_non_pdfs(tmp_path):
    from django.core.management.base import CommandError

    (tmp_path / "a.pdf").write_bytes(pdf(8))
    (tmp_path / "b.pdf").write_bytes(b"GIF89a")
    out = StringIO()
    call_command("submit", str(tmp_path / "a.pdf"), "--priority", "2", "--json", stdout=out)
    assert json.loads(out.getvalue())["created"] is True and Job.objects.get().priority == 2
    with pytest.raises(CommandError, match="not a PDF"):
        call_command("submit", str(tmp_path / "b.pdf"))


def test_missing_path_is_a_clear_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="does not exist"):
        call_command("ingest", str(tmp_path / "nope"))
