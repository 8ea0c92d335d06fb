"""The dashboard and the console lists stay a fixed handful of queries with thousands of jobs."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import queue
from jobs.models import Blob, Job, JobEvent, JobStatus
from live import broadcaster, snapshot
from tests.factories import make_worker

pytestmark = pytest.mark.django_db

JOBS = 3000


@pytest.fixture
def many_jobs():
    """JOBS jobs in every state, a few workers holding running ones, events for each job."""
    now = timezone.now()
    workers = [make_worker(f"bulk-{i}", last_seen=now) for i in range(5)]
    blobs = Blob.objects.bulk_create(
        [Blob(sha256=f"{i:064x}", size=1000 + i, stored=True) for i in range(JOBS)], batch_size=500
    )
    states = [JobStatus.PENDING, JobStatus.DONE, JobStatus.DONE, JobStatus.DEAD, JobStatus.CANCELLED]
    jobs = []
    for i, blob in enumerate(blobs):
        status = states[i % len(states)]
        finished = status in (JobStatus.DONE, JobStatus.DEAD, JobStatus.CANCELLED)
        priority = 1 + i % 5
        jobs.append(
            Job(
                blob=blob,
                filename=f"doc-{i}.pdf",
                status=status,
                priority=priority,
                available_at=now,
                claim_rank=queue.claim_rank(priority, now),
                attempts=1,
                worker=workers[i % 5] if finished else None,
                finished_at=now - timezone.timedelta(seconds=i) if finished else None,
                pages_done=10 if status == JobStatus.DONE else None,
                last_error="boom" if status == JobStatus.DEAD else "",
            )
        )
    jobs = Job.objects.bulk_create(jobs, batch_size=500)
    for worker, job in zip(workers, [j for j in jobs if j.status == JobStatus.PENDING][:5], strict=True):
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.RUNNING,
            worker=worker,
            started_at=now,
            stage="converting",
            pages_done=2,
            pages_total=8,
            lease_token="t",
            lease_expires_at=now + timezone.timedelta(minutes=1),
        )
    JobEvent.objects.bulk_create([JobEvent(job=j, to_status=j.status, actor="system") for j in jobs], batch_size=500)
    return jobs


def test_dashboard_page(role_client, many_jobs, django_assert_max_num_queries):
    client = role_client("operator")
    snapshot._cache = None
    with django_assert_max_num_queries(12):
        response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<span class="n">{JOBS}</span><span class="label">total</span>' in page
    assert page.count('class="worker"') == 5
    assert page.count("ETA ") == 5
    assert page.count('class="retry"') == snapshot.FAILURE_LIMIT


def test_live_update_is_rendered_once_with_few_queries(many_jobs, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        broadcaster.fingerprint()
    with django_assert_max_num_queries(7):
        update = broadcaster.build_and_render()
    assert 'hx-swap-oob="true"' in update["viewer"]
    assert 'class="retry"' in update["operator"] and 'class="retry"' not in update["viewer"]


def test_job_list_and_filters(role_client, many_jobs, django_assert_max_num_queries):
    client = role_client("viewer")
    for query in ("", "?status__exact=dead", "?priority=1&type=pdf", "?q=doc-12"):
        with django_assert_max_num_queries(10):
            response = client.get(f"/admin/jobs/job/{query}")
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) <= 50


def test_worker_event_and_blob_lists(role_client, many_jobs, django_assert_max_num_queries):
    client = role_client("viewer")
    for url in ("/admin/workers/worker/", "/admin/jobs/jobevent/", "/admin/jobs/blob/"):
        with django_assert_max_num_queries(10):
            assert client.get(url).status_code == 200


@pytest.mark.skipif(connection.vendor != "sqlite", reason="query plans are SQLite's")
def test_snapshot_never_walks_the_job_or_event_table(many_jobs):
    """Each query reads an index: the status counts cover (status, priority), throughput ranges over finished_at."""
    with CaptureQueriesContext(connection) as captured:
        snapshot.build()
        broadcaster.fingerprint()
    plans = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            rows = cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}").fetchall()
            plans += [row[-1] for row in rows]
    table_scans = [p for p in plans if re.match(r"SCAN jobs_(job|jobevent)\b", p) and "INDEX" not in p]
    assert not table_scans, plans
    assert any("COVERING INDEX job_status_priority_idx" in p for p in plans), plans
    assert any("INDEX job_finished_idx" in p for p in plans), plans
