"""/metrics: Prometheus text that parses, is guarded by its bearer token, and moves when jobs move."""

from datetime import timedelta

import pytest
import requests
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs import queue
from jobs.models import Job
from tests.components.durability import ApiClient
from tests.factories import make_job, make_worker
from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf
from workers import actions

pytestmark = pytest.mark.postgres
TOKEN = "metrics-token-for-tests-0123456789"


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scrape(server) -> dict:
    response = requests.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(response.text)


def test_metrics_follow_jobs_through_a_real_server(server_factory):
    server = server_factory(BLOBFORGE_METRICS_TOKEN=TOKEN, BLOBFORGE_RETRY_BASE_SECONDS="0")
    empty = scrape(server)
    assert value(empty, "blobforge_jobs", status="pending", priority="2") == 0
    assert value(empty, "blobforge_pages_converted_total") == 0
    assert value(empty, "blobforge_workers", status="online") == 0

    client = ApiClient(server, server.create_token())
    for i, priority in enumerate([2, 2, 4, 4]):
        client.submit(tiny_pdf(i), name=f"m{i}.pdf", priority=priority)
    submitted = scrape(server)
    assert value(submitted, "blobforge_jobs", status="pending", priority="2") == 2
    assert value(submitted, "blobforge_jobs", status="pending", priority="4") == 2

    worker = ProtocolWorker(server.base_url, *server.create_worker("metrics-worker"))
    worker.register()
    job = worker.claim()
    running = scrape(server)
    assert value(running, "blobforge_jobs", status="running", priority="2") == 1
    assert value(running, "blobforge_jobs", status="pending", priority="2") == 1
    assert value(running, "blobforge_workers", status="online") == 1
    assert value(running, "blobforge_claim_duration_seconds_count", outcome="claimed") >= 1

    worker.full_cycle(job, tiny_output_zip()).raise_for_status()
    worker.fail(worker.claim(), "encrypted PDF", retryable=False).raise_for_status()
    assert worker.fail(worker.claim(), "converter crashed").json()["status"] == "pending"
    moved = scrape(server)
    assert value(moved, "blobforge_jobs", status="done", priority="2") == 1
    assert value(moved, "blobforge_jobs", status="dead", priority="2") == 1
    assert value(moved, "blobforge_pages_converted_total") == 1  # the worker reported one page
    assert value(moved, "blobforge_job_run_seconds_count") == 1
    assert value(moved, "blobforge_job_run_seconds_bucket", le="+Inf") == 1
    assert value(moved, "blobforge_job_queue_wait_seconds_count") == 1
    assert value(moved, "blobforge_conversion_failures_total", cause="not_retryable") == 1
    assert value(moved, "blobforge_conversion_failures_total", cause="error") == 1
    assert value(moved, "blobforge_conversion_failures_total", cause="lease_expired") == 0


def test_metrics_need_the_bearer_token(server_factory):
    server = server_factory("guarded", BLOBFORGE_METRICS_TOKEN=TOKEN)
    url = f"{server.base_url}/metrics"
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]:
        refused = requests.get(url, headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.json()["detail"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 405


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_unless_left_open(settings):
    settings.METRICS_TOKEN = ""
    off = Client().get("/metrics")
    assert off.status_code == 404 and "BLOBFORGE_METRICS_TOKEN" in off.json()["detail"]
    settings.METRICS_OPEN = True
    assert "blobforge_jobs" in Client().get("/metrics").content.decode()


@pytest.mark.django_db(transaction=True)
def test_failures_are_counted_by_cause(settings):
    """Each way an attempt can fail is counted under its own cause; releases that spend none are not."""
    settings.METRICS_TOKEN, settings.METRICS_OPEN = "", True
    worker = make_worker()
    for _ in range(5):
        make_job()

    job, lease = queue.claim(worker, ["pdf"])
    queue.fail(worker, job.pk, lease.token, error="boom", retryable=True)
    job, lease = queue.claim(worker, ["pdf"])
    queue.fail(worker, job.pk, lease.token, error="encrypted", retryable=False)
    queue.claim(worker, ["pdf"])
    actions.register(worker, hostname="h", version="v", capabilities={})  # restarted while holding it
    job, lease = queue.claim(worker, ["pdf"])
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # time passes
    assert queue.reap_expired() == 1
    job, lease = queue.claim(worker, ["pdf"])
    queue.release(worker, job.pk, lease.token, reason="attempt to shut down cleanly")

    samples = parse(Client().get("/metrics").content.decode())
    counted = {
        cause: value(samples, "blobforge_conversion_failures_total", cause=cause)
        for cause in ("error", "not_retryable", "worker_restarted", "lease_expired")
    }
    assert counted == {"error": 1, "not_retryable": 1, "worker_restarted": 1, "lease_expired": 1}
