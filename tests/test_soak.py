"""Soak: 50 simulated workers claim, heartbeat, download, upload and complete against one server on SQLite.

A feeder submits documents through the client API the whole time, and ``manage.py prune
--days 0`` runs every few seconds as an operator's cron would. Shown at the end:

* zero errors: every protocol call a well-behaved worker makes succeeds;
* every job finished was completed exactly once, by the worker the server says did it;
* the server's memory (RSS of the daphne process) grows by less than ``RSS_GROWTH_BOUND``
  between the end of the warm-up (first third) and the end;
* the event table stays bounded by the retention: after pruning, a finished job keeps only
  its last event, so the table grows with the active jobs, not with the work done.

CI runs 60 s; ``BLOBFORGE_SOAK_SECONDS`` sets another length (300 in the nightly run).
"""

import hashlib
import json
import os
import random
import threading
import time
from collections import Counter

import pytest
import requests

from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = pytest.mark.slow

WORKERS = 50
SECONDS = int(os.environ.get("BLOBFORGE_SOAK_SECONDS") or (300 if os.environ.get("BLOBFORGE_FUZZ_NIGHTLY") else 60))
BACKLOG = 200  # the feeder keeps about this many jobs pending
RSS_GROWTH_BOUND = 64 * 1024 * 1024
PRUNE_EVERY = 10


def rss_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def make_workers(server, count: int) -> list[tuple[str, str]]:
    """Create the workers in one ``manage.py shell`` (fifty ``manage.py workers create`` would take minutes)."""
    out = server.shell(
        "import json; from workers import actions\n"
        f"print(json.dumps([[f'soak-{{i}}', actions.create(f'soak-{{i}}')[1]] for i in range({count})]))"
    )
    return [tuple(pair) for pair in json.loads(out.strip().splitlines()[-1])]


@pytest.fixture
def sqlite_server(server_factory, monkeypatch):
    monkeypatch.delenv("BLOBFORGE_TEST_POSTGRES_URL", raising=False)  # the soak is about the embedded default
    return server_factory(BLOBFORGE_RETRY_BASE_SECONDS="0", BLOBFORGE_CLAIM_WAIT_MAX_SECONDS="2")


@pytest.mark.timeout(SECONDS * 3 + 300)
def test_fifty_workers_for_a_while_without_errors_leaks_or_unbounded_history(sqlite_server, tmp_path):
    server = sqlite_server
    token = server.create_token("submit,read")
    client = server.token_session(token)
    credentials = make_workers(server, WORKERS)
    seed = tmp_path / "seed"
    seed.mkdir()
    for n in range(BACKLOG):  # a backlog to start with; the feeder tops it up through the API
        (seed / f"seed-{n}.pdf").write_bytes(tiny_pdf(n))
    server.manage("ingest", "--no-progress", str(seed))
    stop = threading.Event()
    errors: list[str] = []
    completed: Counter = Counter()
    failed_on_purpose = Counter()
    lock = threading.Lock()
    output = tiny_output_zip("# soak\n")

    def error(message: str) -> None:
        with lock:
            errors.append(message)
        stop.set()

    def expect(response: requests.Response, what: str, status: int = 200) -> bool:
        if response.status_code != status:
            error(f"{what}: {response.status_code} {response.text[:300]}")
            return False
        return True

    def guarded(body):
        """Run a thread's body; an exception (a refused claim, a dropped connection) is an error."""

        def run(*args) -> None:
            try:
                body(*args)
            except Exception as exc:
                error(f"{body.__name__}{args[:1]}: {type(exc).__name__}: {exc}")

        return run

    def feed() -> None:
        n = 0
        while not stop.is_set():
            pending = client.get(server.base_url + "/api/v1/stats", timeout=30).json()["by_status"]["pending"]
            for _ in range(max(BACKLOG - pending, 0)):
                n += 1
                data = b"%PDF-1.4\n% soak document " + str(n).encode() + os.urandom(16) + b"\n%%EOF\n"
                sha = hashlib.sha256(data).hexdigest()
                declared = client.post(
                    server.base_url + "/api/v1/blobs", json={"sha256": sha, "size": len(data)}, timeout=30
                )
                if not expect(declared, "declare blob"):
                    return
                upload = declared.json()["upload"]
                put = requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30)
                if not expect(put, "upload source", 201):
                    return
                if not expect(client.post(server.base_url + "/api/v1/jobs", json={"sha256": sha}), "submit", 201):
                    return
            stop.wait(0.5)

    def work(name: str, secret: str) -> None:
        worker = ProtocolWorker(server.base_url, name, secret)
        worker.register()
        rng = random.Random(name)
        while not stop.is_set():
            job = worker.claim(wait=1)
            if job is None:
                continue
            if not expect(worker.heartbeat(job, stage="downloading"), f"heartbeat {job.id}"):
                return
            if not expect(requests.get(job.source_url, timeout=30), f"download {job.id}"):
                return
            if not expect(worker.heartbeat(job, stage="converting", pages_done=1, pages_total=1), "heartbeat"):
                return
            if rng.random() < 0.05:  # now and then a conversion fails and the job comes back
                if expect(worker.fail(job, "soak: simulated failure"), f"fail {job.id}"):
                    with lock:
                        failed_on_purpose[job.id] += 1
                continue
            if not expect(worker.upload_output(job, output), f"upload {job.id}", 201):
                return
            if expect(worker.complete(job, output), f"complete {job.id}"):
                with lock:
                    completed[job.id] += 1
        worker.post("unregister")

    def prune() -> None:
        while not stop.wait(PRUNE_EVERY):
            server.manage("prune", "--days", "0")

    pid = server.process.pid
    threads = [threading.Thread(target=guarded(feed)), threading.Thread(target=guarded(prune))]
    threads += [threading.Thread(target=guarded(work), args=pair) for pair in credentials]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while time.monotonic() - started < SECONDS and not stop.is_set():
        samples.append((time.monotonic() - started, rss_bytes(pid)))
        stop.wait(1)
    stop.set()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a simulated worker hung"

    assert not errors, f"{len(errors)} errors, first: {errors[:5]}"
    assert server.process.poll() is None, "the server died"
    assert len(completed) >= WORKERS, f"only {len(completed)} jobs were completed in {SECONDS}s"
    assert set(completed.values()) == {1}, "a job was completed twice"

    warm = [rss for at, rss in samples if at <= SECONDS / 3]
    late = [rss for at, rss in samples if at >= SECONDS * 2 / 3]
    growth = max(late) - warm[-1]
    assert growth < RSS_GROWTH_BOUND, f"server RSS grew {growth / 2**20:.1f} MiB after warm-up"

    server.manage("prune", "--days", "0")
    counts = server.shell(
        "import json; from django.db.models import Count; from jobs.models import Job, JobEvent\n"
        "finished = Job.objects.filter(status__in=['done', 'dead', 'cancelled'])\n"
        "print(json.dumps({'done': Job.objects.filter(status='done').count(), 'finished': finished.count(),"
        " 'events': JobEvent.objects.count(),"
        " 'finished_events': JobEvent.objects.filter(job__in=finished).count(),"
        " 'active_events': JobEvent.objects.exclude(job__in=finished).count(),"
        " 'active': Job.objects.exclude(status__in=['done', 'dead', 'cancelled']).count()}))"
    )
    db = json.loads(counts.strip().splitlines()[-1])
    assert db["done"] == len(completed), (
        f"the server has {db['done']} done jobs, the workers completed {len(completed)}"
    )
    assert db["finished_events"] == db["finished"], f"pruning left more than one event per finished job: {db}"
    assert db["events"] == db["finished"] + db["active_events"]
    # An active job's history is its submit, claims, failures and releases: a handful, never the work done.
    assert db["active_events"] <= 10 * db["active"], db
    print(
        f"soak {SECONDS}s: {len(completed)} completed, {sum(failed_on_purpose.values())} failed on purpose, "
        f"RSS {warm[-1] / 2**20:.0f} → {max(late) / 2**20:.0f} MiB, events after prune {db['events']}"
    )
