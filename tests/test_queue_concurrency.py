"""Many workers at once over real HTTP: every job completed exactly once, none lost."""

import threading
from collections import Counter

import pytest
import requests

from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

JOBS = 500
WORKERS = 8


def test_eight_workers_drain_500_jobs_exactly_once(server, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(JOBS):
        (docs / f"doc{n:04}.pdf").write_bytes(tiny_pdf(n))
    summary = server.manage_json("ingest", str(docs), "--no-progress")
    assert summary["new"] == JOBS and summary["jobs_created"] == JOBS

    completed: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)
    output = tiny_output_zip()

    def work(index: int) -> None:
        worker = ProtocolWorker(server.base_url, *credentials[index])
        worker.register()
        start.wait()
        while True:
            job = worker.claim()
            if job is None:
                return
            response = worker.full_cycle(job, output)
            with lock:
                if response.status_code == 200:
                    completed[job.id] += 1
                else:
                    errors.append(f"job {job.id}: {response.status_code} {response.text}")

    credentials = [server.create_worker(f"storm-{i}") for i in range(WORKERS)]
    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)

    assert not errors
    assert len(completed) == JOBS and set(completed.values()) == {1}, "every job completed exactly once"
    token = server.create_token("read")
    stats = requests.get(server.base_url + "/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).json()
    assert stats["by_status"]["done"] == JOBS and stats["by_status"]["pending"] == 0
    assert stats["by_status"]["running"] == 0
    # The audit log agrees: one running→done event per job, one claim per job.
    transitions = server.shell(
        "from jobs.models import JobEvent; from django.db.models import Count;"
        "print(sorted(set(JobEvent.objects.filter(to_status='done').values('job').annotate(n=Count('id')).values_list('n', flat=True))),"
        " JobEvent.objects.filter(to_status='done').count(), JobEvent.objects.filter(to_status='running').count())",
    ).split()
    assert transitions == ["[1]", str(JOBS), str(JOBS)]
