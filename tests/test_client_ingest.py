"""``blobforge ingest`` against a live server: dedup, resumption after a real interruption, scopes, hash cache."""

import hashlib
import os
import shutil
import signal
import subprocess

import pytest

from tests.components.client import REPO, CountingProxy, cli_command, cli_env, last_json, run_cli

DOCS = ["crazyones.pdf", "example.pdf", "multilang.pdf", "tagged.pdf", "pdflatex-outline.pdf", "jpeg.pdf"]


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lfs_pointer(sha256: str, size: int) -> str:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"


def build_tree(root, fixture_pdfs) -> dict:
    """Six distinct PDFs in nested folders, two copies, an LFS pointer to one of them, and things to skip."""
    placed = {
        "a/crazyones.pdf": "crazyones.pdf",
        "a/b/example.pdf": "example.pdf",
        "a/b/c/multilang.pdf": "multilang.pdf",
        "reports/2024/tagged.pdf": "tagged.pdf",
        "reports/2024/q1/outline.pdf": "pdflatex-outline.pdf",
        "scans/jpeg.pdf": "jpeg.pdf",
        "dupes/crazyones-copy.pdf": "crazyones.pdf",
        "dupes/deep/example.pdf": "example.pdf",
        ".git/lfs/objects/ignored.pdf": "tagged.pdf",
    }
    for relative, name in placed.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fixture_pdfs / name, root / relative)
    multilang = fixture_pdfs / "multilang.pdf"
    (root / "lfs").mkdir()
    (root / "lfs/multilang.pdf").write_text(lfs_pointer(sha256_of(multilang), multilang.stat().st_size))
    (root / "lfs/missing.pdf").write_text(lfs_pointer("ab" * 32, 1234))
    (root / "notes.txt").write_text("not a document\n")
    (root / "a/fake.pdf").write_text("named .pdf, but these bytes are text\n")
    (root / "scans/picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    return {"shas": {sha256_of(fixture_pdfs / name) for name in DOCS}, "pdf_files": 9, "skipped": 4, "files": 13}


def source_objects(seaweedfs, server) -> list[str]:
    prefix = server.env["BLOBFORGE_S3_PREFIX"] + "/sources/"
    listing = seaweedfs.client().list_objects_v2(Bucket=seaweedfs.bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def all_jobs(server, token) -> list[dict]:
    return server.token_session(token).get(server.base_url + "/api/v1/jobs", params={"limit": 200}).json()["results"]


@pytest.mark.slow
def test_interrupted_ingest_resumes_and_uploads_every_document_once(s3_server, seaweedfs, fixture_pdfs, tmp_path):
    tree = build_tree(tmp_path / "tree", fixture_pdfs)
    token = s3_server.create_token("read,submit")
    first_proxy = CountingProxy(hold_after=3)
    client = subprocess.Popen(
        cli_command("ingest", str(tmp_path / "tree"), "--parallel", "2", "--no-progress"),
        cwd=REPO,
        env=cli_env(s3_server, token, **first_proxy.env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first_proxy.wait_for_source_puts(3)
        assert client.poll() is None, "the client finished before it could be interrupted"
        client.send_signal(signal.SIGKILL)
        client.wait(30)
    finally:
        first_proxy.close()
    assert len(source_objects(seaweedfs, s3_server)) == 3

    second_proxy = CountingProxy()
    try:
        done = run_cli(
            s3_server,
            token,
            "ingest",
            str(tmp_path / "tree"),
            "--json",
            env=cli_env(s3_server, token, **second_proxy.env()),
        )
    finally:
        second_proxy.close()
    assert done.returncode == 0, done.stderr
    summary = last_json(done)
    assert (summary["new"], summary["duplicate"]) == (3, tree["pdf_files"] - 3)
    assert (summary["skipped"], summary["failed"], summary["files"]) == (tree["skipped"], 0, tree["files"])
    assert summary["uploaded"] == 3
    skipped = {problem["path"]: problem["reason"] for problem in summary["problems"]}
    assert "git lfs pull" in skipped["lfs/missing.pdf"]
    assert set(skipped) == {"lfs/missing.pdf", "notes.txt", "a/fake.pdf", "scans/picture.png"}

    puts = first_proxy.source_puts() + second_proxy.source_puts()
    assert len(puts) == len(tree["shas"]) and set(puts.values()) == {1}, puts
    assert len(source_objects(seaweedfs, s3_server)) == len(tree["shas"])
    jobs = all_jobs(s3_server, token)
    assert sorted(job["sha256"] for job in jobs) == sorted(tree["shas"])
    assert {job["status"] for job in jobs} == {"pending"}

    again = last_json(run_cli(s3_server, token, "ingest", str(tmp_path / "tree"), "--json"))
    assert (again["new"], again["duplicate"], again["uploaded"], again["jobs_created"]) == (0, 9, 0, 0)


def test_folders_become_tags_and_dry_run_changes_nothing(server, fixture_pdfs, tmp_path):
    tree = build_tree(tmp_path / "tree", fixture_pdfs)
    token = server.create_token("read,submit")
    dry = run_cli(server, token, "ingest", str(tmp_path / "tree"), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert (last_json(dry)["new"], last_json(dry)["uploaded"]) == (len(tree["shas"]), 0)
    assert all_jobs(server, token) == []

    done = run_cli(server, token, "ingest", str(tmp_path / "tree"), "--priority", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert (last_json(done)["new"], last_json(done)["jobs_created"]) == (len(tree["shas"]), len(tree["shas"]))
    session = server.token_session(token)
    tagged = session.get(server.base_url + "/api/v1/jobs", params={"search": "q1"}).json()["results"]
    assert [job["sha256"] for job in tagged] == [sha256_of(fixture_pdfs / "pdflatex-outline.pdf")]
    assert {job["priority"] for job in all_jobs(server, token)} == {2}

    dry_again = last_json(run_cli(server, token, "ingest", str(tmp_path / "tree"), "--dry-run", "--json"))
    assert (dry_again["new"], dry_again["duplicate"]) == (0, tree["pdf_files"])


def test_token_without_submit_scope_is_refused_before_any_upload(server, fixture_pdfs, tmp_path):
    build_tree(tmp_path / "tree", fixture_pdfs)
    token = server.create_token("read")
    done = run_cli(server, token, "ingest", str(tmp_path / "tree"))
    assert done.returncode == 2
    assert "lacks the 'submit' scope" in done.stderr
    stored = [p for p in (server.data_dir / "storage").rglob("*") if p.is_file()]
    assert stored == []
    assert all_jobs(server, token) == []


def test_unreachable_server_is_a_connection_error(server, fixture_pdfs, tmp_path):
    build_tree(tmp_path / "tree", fixture_pdfs)
    token = server.create_token("read,submit")
    env = cli_env(server, token, BLOBFORGE_SERVER_URL="http://127.0.0.1:9")
    done = run_cli(server, token, "ingest", str(tmp_path / "tree"), env=env)
    assert done.returncode == 2
    assert "cannot reach" in done.stderr


def xattrs_work(path) -> bool:
    try:
        os.setxattr(path, "user.blobforge-test", b"1")
    except OSError:
        return False
    return True


def test_unchanged_files_are_not_read_again(server, fixture_pdfs, tmp_path):
    tree = build_tree(tmp_path / "tree", fixture_pdfs)
    if not xattrs_work(tmp_path / "tree/notes.txt"):
        pytest.skip("this filesystem has no user extended attributes")
    token = server.create_token("read,submit")
    first = last_json(run_cli(server, token, "ingest", str(tmp_path / "tree"), "--json"))
    assert (first["hashed_files"], first["hash_cache_hits"]) == (8, 0)
    pdf = tmp_path / "tree/a/b/example.pdf"
    assert os.getxattr(pdf, "user.checksum.sha256").decode() == sha256_of(pdf)
    assert os.getxattr(pdf, "user.checksum.mtime").decode() == str(pdf.stat().st_mtime_ns)

    second = last_json(run_cli(server, token, "ingest", str(tmp_path / "tree"), "--json"))
    assert (second["hashed_files"], second["hash_cache_hits"], second["duplicate"]) == (0, 8, tree["pdf_files"])

    shutil.copy(fixture_pdfs / "congress.pdf", pdf)  # new bytes, new mtime: read again and uploaded
    third = last_json(run_cli(server, token, "ingest", str(tmp_path / "tree"), "--json"))
    assert (third["hashed_files"], third["hash_cache_hits"], third["new"]) == (1, 7, 1)
    assert os.getxattr(pdf, "user.checksum.sha256").decode() == sha256_of(fixture_pdfs / "congress.pdf")
