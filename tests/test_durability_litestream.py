"""Disaster drill: ``manage.py serve`` replicates SQLite to a real S3 (SeaweedFS) with Litestream;
after the server is killed and its database deleted, serve restores every committed job and event
and the queue carries on."""

from urllib.parse import unquote, urlparse

import pytest

from blobforge_site import litestream
from jobs import storage
from tests.components.durability import ApiClient, ServeProcess, wait_for
from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = pytest.mark.slow
PREFIX = "drill"


@pytest.fixture
def serve(tmp_path, private_seaweedfs):
    server = ServeProcess(
        tmp_path / "server",
        {
            **private_seaweedfs.env(prefix=PREFIX),
            "BLOBFORGE_RETRY_BASE_SECONDS": "0",
            "BLOBFORGE_LEASE_SECONDS": "600",
            "BLOBFORGE_LITESTREAM_SYNC_INTERVAL": "1s",
        },
    ).start()
    yield server
    server.stop(kill=True)


def snapshot(client: ApiClient, job_ids: list[int]) -> dict[int, tuple]:
    """What a user sees of each job: status, attempts, and its whole event history."""
    seen = {}
    for job_id in job_ids:
        job = client.job(job_id)
        events = [(e["at"], e["from_status"], e["to_status"], e["actor"], e["message"]) for e in job["events"]]
        seen[job_id] = (job["status"], job["attempts"], job["priority"], events)
    return seen


def replica_holds(server: ServeProcess, tmp_path, expected: dict[int, tuple]) -> bool:
    """True once a restore of the replica as it is in the bucket shows every job and event in ``expected``."""
    copy = server.replica_copy(tmp_path / "replica-copy.sqlite3")
    if copy is None:
        return False
    with copy:
        jobs = dict(copy.execute("SELECT id, status FROM jobs_job").fetchall())
        events = dict(copy.execute("SELECT job_id, COUNT(*) FROM jobs_jobevent GROUP BY job_id").fetchall())
    copy.close()
    return all(jobs.get(job_id) == seen[0] and events.get(job_id) == len(seen[3]) for job_id, seen in expected.items())


def test_killed_server_with_deleted_database_is_restored_and_carries_on(serve, tmp_path, private_seaweedfs, settings):
    client = ApiClient(serve, serve.create_token())
    worker = ProtocolWorker(serve.base_url, *serve.create_worker("drill-worker"))
    worker.register()
    jobs = [client.submit(tiny_pdf(i), name=f"doc{i}.pdf", priority=1 + i) for i in range(5)]
    output = tiny_output_zip()

    claims = [worker.claim()]
    worker.full_cycle(claims[-1], output).raise_for_status()
    claims.append(worker.claim())
    assert worker.fail(claims[-1], "encrypted PDF", retryable=False).json()["status"] == "dead"
    running = worker.claim()
    claims.append(running)
    assert client.call("post", f"jobs/{jobs[4]}/cancel").status_code == 200
    assert client.call("post", f"jobs/{jobs[3]}/priority", json={"priority": 1}).status_code == 200
    before = snapshot(client, jobs)
    assert [before[j][0] for j in jobs] == ["done", "dead", "running", "pending", "cancelled"]

    wait_for(lambda: replica_holds(serve, tmp_path, before), 90, "the replica to hold every job and event")

    serve.stop(kill=True)
    serve.db_path.unlink()
    serve.start()

    assert snapshot(client, jobs) == before
    # The worker's lease survived the restore: it finishes its job, then takes the one still pending.
    worker.full_cycle(running, output).raise_for_status()
    claims.append(worker.claim())
    assert claims[-1].id == jobs[3]
    worker.full_cycle(claims[-1], output).raise_for_status()
    new_id = client.submit(tiny_pdf(99), name="after.pdf")
    assert new_id > max(jobs)
    claims.append(worker.claim())
    assert claims[-1].id == new_id
    worker.full_cycle(claims[-1], output).raise_for_status()
    after = snapshot(client, [*jobs, new_id])
    assert {j: after[j][0] for j in after} == {
        jobs[0]: "done",
        jobs[1]: "dead",
        jobs[2]: "done",
        jobs[3]: "done",
        jobs[4]: "cancelled",
        new_id: "done",
    }

    # Replication goes on from the restored database: the work done since is backed up too.
    wait_for(lambda: replica_holds(serve, tmp_path, after), 90, "the replica to hold the work done after the restore")

    # No URL the server handed out (sources to read, outputs to write and to download) points into the replica.
    another = client.submit(tiny_pdf(100), name="url-check.pdf")
    claimed = worker.claim()
    assert claimed.id == another
    upload = worker.post(f"jobs/{another}/upload-url", {"lease": claimed.lease, "size": len(output)}).json()["url"]
    urls = [c.source_url for c in claims + [claimed]] + [upload] + [client.job(j)["output"]["url"] for j in jobs[:1]]
    settings.STORAGE_PREFIX = PREFIX
    replica_keys = f"/{private_seaweedfs.bucket}/{litestream.replica_path()}/"
    paths = [unquote(urlparse(url).path) for url in urls]
    assert all(path.startswith(f"/{private_seaweedfs.bucket}/{PREFIX}/") for path in paths)
    assert not any(path.startswith(replica_keys) for path in paths)


def test_serve_without_s3_runs_without_litestream(tmp_path):
    server = ServeProcess(tmp_path / "plain").start()
    try:
        client = ApiClient(server, server.create_token())
        job_id = client.submit(tiny_pdf(1), name="plain.pdf")
        assert client.job(job_id)["status"] == "pending"
        assert not (server.data_dir / ".blobforge.sqlite3-litestream").exists()
        refused = server.manage("litestream", "ltx", check=False)
        assert refused.returncode != 0 and "not in use" in refused.stderr
    finally:
        server.stop(kill=True)


@pytest.mark.parametrize("prefix", ["", "tenant-a", "deep/prefix"])
def test_storage_keys_never_reach_the_replica(settings, prefix):
    settings.STORAGE_PREFIX = prefix
    replica = litestream.replica_path() + "/"
    sha = "ab" * 32
    keys = [storage.source_key(sha)] + [storage.output_key(t, sha) for t in ("pdf", "litestream", "a-b_c")]
    assert all(not key.startswith(replica) for key in keys)
    assert all(key.split("/")[len(prefix.split("/")) if prefix else 0] in ("sources", "outputs") for key in keys)
    for job_type, digest in [("../litestream", sha), ("pdf/../../litestream", sha), ("pdf", "../litestream")]:
        with pytest.raises(storage.StorageError):
            storage.output_key(job_type, digest)
    with pytest.raises(storage.StorageError):
        storage.source_key("../litestream/0000")
