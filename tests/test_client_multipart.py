"""Large files go up to S3 in parallel parts; the server checks the assembled bytes before calling them stored."""

import hashlib
import os

import pytest
import requests

from tests.components.client import CountingProxy, cli_env, last_json, run_cli

MiB = 1024 * 1024


def big_pdf(path, size: int) -> bytes:
    data = b"%PDF-1.4\n" + os.urandom(size - 9)
    path.write_bytes(data)
    return data


@pytest.mark.slow
def test_large_file_is_uploaded_in_parts_to_s3(s3_server, seaweedfs, tmp_path):
    (tmp_path / "docs").mkdir()
    data = big_pdf(tmp_path / "docs/big.pdf", 12 * MiB)
    sha256 = hashlib.sha256(data).hexdigest()
    token = s3_server.create_token("read,submit")
    proxy = CountingProxy()
    try:
        done = run_cli(
            s3_server,
            token,
            "ingest",
            str(tmp_path / "docs"),
            *("--multipart-threshold", "5", "--part-size", "5", "--json"),
            env=cli_env(s3_server, token, **proxy.env()),
        )
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr
    assert (last_json(done)["new"], last_json(done)["uploaded"]) == (1, 1)
    parts = [url for method, url in proxy.succeeded if method == "PUT" and "partNumber=" in url]
    assert len(parts) == 3  # 12 MiB in 5 MiB parts (the S3 minimum)
    key = f"{s3_server.env['BLOBFORGE_S3_PREFIX']}/sources/{sha256[:2]}/{sha256}.pdf"
    stored = seaweedfs.client().get_object(Bucket=seaweedfs.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == sha256
    jobs = s3_server.token_session(token).get(s3_server.base_url + "/api/v1/jobs").json()["results"]
    assert [job["sha256"] for job in jobs] == [sha256]


def test_parts_that_do_not_match_the_declared_sha256_are_refused(s3_server, seaweedfs, tmp_path):
    token = s3_server.create_token("read,submit")
    api = s3_server.token_session(token)
    declared_bytes, sent_bytes = b"%PDF-1.4\n" + b"a" * (6 * MiB), b"%PDF-1.4\n" + b"b" * (6 * MiB)
    sha256 = hashlib.sha256(declared_bytes).hexdigest()
    base = s3_server.base_url + "/api/v1/blobs"
    assert api.post(base, json={"sha256": sha256, "size": len(declared_bytes)}).json()["stored"] is False
    plan = api.post(f"{base}/{sha256}/multipart", json={"part_size": 5 * MiB}).json()
    etags = []
    for part in plan["parts"]:
        start = (part["number"] - 1) * plan["part_size"]
        put = requests.put(part["url"], data=sent_bytes[start : start + plan["part_size"]])
        assert put.status_code == 200, put.text
        etags.append({"number": part["number"], "etag": put.headers["ETag"]})
    refused = api.post(f"{base}/{sha256}/multipart/complete", json={"upload_id": plan["upload_id"], "parts": etags})
    assert refused.status_code == 422
    assert "does not match" in refused.json()["detail"]
    assert api.post(s3_server.base_url + "/api/v1/jobs", json={"sha256": sha256}).status_code == 409  # nothing stored
    again = api.post(base, json={"sha256": sha256, "size": len(declared_bytes)}).json()
    assert again["stored"] is False


def test_local_storage_takes_the_single_put_instead(server, tmp_path):
    (tmp_path / "docs").mkdir()
    data = big_pdf(tmp_path / "docs/big.pdf", 6 * MiB)
    token = server.create_token("read,submit")
    done = run_cli(server, token, "ingest", str(tmp_path / "docs"), "--multipart-threshold", "5", "--json")
    assert done.returncode == 0, done.stderr
    assert last_json(done)["uploaded"] == 1
    sha256 = hashlib.sha256(data).hexdigest()
    assert (server.data_dir / f"storage/sources/{sha256[:2]}/{sha256}.pdf").read_bytes() == data
