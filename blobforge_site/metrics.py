"""``/metrics`` in the Prometheus text format.

Most numbers are read from the database at scrape time, so every server process
answers the same and nothing is lost when a process restarts or when a management
command (``reap``, ``cancel`` …) changes jobs outside the server:

* ``blobforge_jobs{status,priority}`` and ``blobforge_workers{status}``: gauges from grouped,
  indexed counts;
* ``blobforge_job_queue_wait_seconds`` / ``blobforge_job_run_seconds``: histograms over done
  jobs (from ready to claimed, and from claimed to done, of the attempt that succeeded);
* ``blobforge_pages_converted_total``: pages of done jobs;
* ``blobforge_conversion_failures_total{cause}``: failed attempts, classified from ``JobEvent``.

Only ``blobforge_claim_duration_seconds`` (how long one claim transaction takes) is
observed in-process, by ``timed_claim`` around ``jobs.queue.claim``: it is per process,
so scrape each server process as its own target and ``sum`` across them.
"""

import functools
import hmac
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, Q, Sum, Value, When
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs.models import Job, JobEvent, JobStatus

REGISTRY = CollectorRegistry()

CLAIM_SECONDS = Histogram(
    "blobforge_claim_duration_seconds",
    "Time one claim transaction took in this server process, by outcome (claimed a job or found none).",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)

WAIT_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600)
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)

# A failed attempt is a running → pending/dead event whose message says why, in the words
# jobs.queue and workers.actions write. Releases that spend no attempt (shutdown, disable,
# a worker's own reason) match none of these and are not failures.
FAILURE_CAUSES = (
    ("lease_expired", r"^lease expired: "),
    ("worker_restarted", r"^worker restarted while holding the job"),
    ("not_retryable", r"^not retryable: "),
    ("error", r"^attempt [0-9]+ of [0-9]+ failed"),
)


def timed_claim(claim: Callable) -> Callable:
    """Wrap ``jobs.queue.claim``: observe how long it took, after its transaction committed."""

    @functools.wraps(claim)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        result = claim(*args, **kwargs)
        CLAIM_SECONDS.labels("claimed" if result else "empty").observe(time.perf_counter() - started)
        return result

    return timed


def _histogram(name: str, documentation: str, duration: F, bounds: tuple[int, ...]) -> HistogramMetricFamily:
    """One aggregate query: cumulative bucket counts, count and sum of ``duration`` over done jobs."""
    done = Job.objects.filter(status=JobStatus.DONE, started_at__isnull=False).annotate(
        seconds=ExpressionWrapper(duration, output_field=DurationField())
    )
    buckets = {f"le{i}": Count("id", filter=Q(seconds__lte=timedelta(seconds=b))) for i, b in enumerate(bounds)}
    row = done.aggregate(total=Count("id"), sum=Sum("seconds"), **buckets)
    cumulative = [(str(float(b)), row[f"le{i}"]) for i, b in enumerate(bounds)] + [("+Inf", row["total"])]
    total_seconds = row["sum"].total_seconds() if row["sum"] else 0.0
    return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=total_seconds)


class QueueCollector(Collector):
    """Numbers read from the database at each scrape (right across any number of processes)."""

    def collect(self) -> Iterator[Metric]:
        from workers import actions
        from workers.models import Worker

        jobs = GaugeMetricFamily(
            "blobforge_jobs", "Jobs by status and priority (1 critical … 5 background).", labels=["status", "priority"]
        )
        counts = {(status, p): 0 for status in JobStatus.values for p in range(1, 6)}
        for row in Job.objects.values("status", "priority").annotate(n=Count("id")).order_by():
            counts[(row["status"], row["priority"])] = row["n"]
        for (status, priority), n in counts.items():
            jobs.add_metric([status, str(priority)], n)
        yield jobs

        workers = GaugeMetricFamily("blobforge_workers", "Workers by status.", labels=["status"])
        by_status = dict.fromkeys(("online", "draining", "offline", "disabled"), 0)
        for worker in Worker.objects.only("enabled", "draining", "last_seen"):
            by_status[actions.status(worker, settings.WORKER_OFFLINE_SECONDS)] += 1
        for status, n in by_status.items():
            workers.add_metric([status], n)
        yield workers

        yield _histogram(
            "blobforge_job_queue_wait_seconds",
            "Done jobs: seconds from ready (submitted or retry due) to claimed, for the attempt that succeeded.",
            F("started_at") - F("available_at"),
            WAIT_BUCKETS,
        )
        yield _histogram(
            "blobforge_job_run_seconds",
            "Done jobs: seconds from claimed to done.",
            F("finished_at") - F("started_at"),
            RUN_BUCKETS,
        )

        pages = Job.objects.filter(status=JobStatus.DONE).aggregate(n=Sum("pages_done"))["n"] or 0
        yield CounterMetricFamily("blobforge_pages_converted", "Pages of documents converted (done jobs).", value=pages)

        failures = CounterMetricFamily(
            "blobforge_conversion_failures",
            "Failed conversion attempts by cause (from the job event log).",
            labels=["cause"],
        )
        cause = Case(
            *(When(message__regex=pattern, then=Value(name)) for name, pattern in FAILURE_CAUSES), default=Value("")
        )
        counted = dict.fromkeys((name for name, _ in FAILURE_CAUSES), 0)
        rows = (
            JobEvent.objects.filter(from_status=JobStatus.RUNNING, to_status__in=[JobStatus.PENDING, JobStatus.DEAD])
            .annotate(cause=cause)
            .values("cause")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            if row["cause"]:
                counted[row["cause"]] = row["n"]
        for name, n in counted.items():
            failures.add_metric([name], n)
        yield failures


REGISTRY.register(QueueCollector())


@csrf_exempt  # bearer-token only: no cookie is ever honoured here
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint: Bearer ``BLOBFORGE_METRICS_TOKEN``; 404 with no token unless left open."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"detail": "only GET is allowed on /metrics"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), token.encode()):
            response = JsonResponse({"detail": "send Authorization: Bearer <BLOBFORGE_METRICS_TOKEN>"}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not settings.METRICS_OPEN:
        return JsonResponse(
            {"detail": "metrics are off: set BLOBFORGE_METRICS_TOKEN (or BLOBFORGE_METRICS_OPEN=true)"}, status=404
        )
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
