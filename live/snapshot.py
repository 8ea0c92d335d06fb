"""What the dashboard shows, computed with a handful of indexed, bounded queries.

One snapshot serves every open dashboard of a process: the broadcaster builds it when
something changed and the page view reuses it for up to ``CACHE_SECONDS``.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from jobs.models import Job, JobStatus
from live.models import QueueSample
from workers import actions
from workers.models import Worker

CACHE_SECONDS = 1.0
WINDOW_MINUTES = 60
WORKER_LIMIT = 100
FAILURE_LIMIT = 8
SAMPLE_RETENTION = timedelta(hours=24)
CHART_WIDTH, CHART_HEIGHT = 600, 80


@dataclass
class Chart:
    """A tiny SVG chart: bars (or a line) scaled to the series' maximum."""

    values: list[float]
    labels: list[str]
    peak: float = 0
    bars: list[dict] = field(default_factory=list)
    points: str = ""

    @classmethod
    def build(cls, values: list[float | None], labels: list[str]) -> "Chart":
        """``None`` is a gap (no sample that minute): no bar, no point."""
        known = [v for v in values if v is not None]
        chart = cls(values, labels, peak=max(known, default=0))
        scale = CHART_HEIGHT / chart.peak if chart.peak else 0
        step = CHART_WIDTH / max(len(values), 1)
        chart.bars = [
            {
                "x": round(i * step, 1),
                "w": round(max(step - 1, 1), 1),
                "h": round(v * scale, 1),
                "y": round(CHART_HEIGHT - v * scale, 1),
                "title": f"{labels[i]}: {v:g}",
            }
            for i, v in enumerate(values)
            if v is not None
        ]
        chart.points = " ".join(f"{b['x'] + b['w'] / 2},{b['y']}" for b in chart.bars)
        return chart


@dataclass
class WorkerRow:
    worker: Worker
    status: str
    jobs: list[dict]


def _eta(job: Job, now: datetime) -> str:
    if not (job.pages_total and job.pages_done and job.started_at):
        return ""
    elapsed = (now - job.started_at).total_seconds()
    left = elapsed / job.pages_done * (job.pages_total - job.pages_done)
    if left < 60:
        return f"{int(left)} s"
    return f"{int(left // 60)} min" if left < 3600 else f"{left / 3600:.1f} h"


def _rate(job: Job, now: datetime) -> str:
    """Pages per second since the claim (heartbeats carry pages_done)."""
    elapsed = (now - job.started_at).total_seconds() if job.started_at else 0
    if not (job.pages_done and elapsed > 0):
        return ""
    rate = job.pages_done / elapsed
    return f"{rate:.1f}" if rate >= 1 else f"{rate:.2f}"


def _running_job(job: Job, now: datetime) -> dict:
    percent = round(100 * (job.pages_done or 0) / job.pages_total) if job.pages_total else None
    return {"job": job, "percent": percent, "eta": _eta(job, now), "rate": _rate(job, now)}


def _counts() -> tuple[dict[str, int], list[dict]]:
    """One grouped count over the (status, priority) index: totals by status and the active jobs by priority."""
    by_status = {s: 0 for s in JobStatus.values}
    by_priority = {p: {"priority": p, "pending": 0, "running": 0} for p in range(1, 6)}
    rows = Job.objects.order_by().values_list("status", "priority").annotate(n=Count("id"))
    for status, priority, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        if status in (JobStatus.PENDING, JobStatus.RUNNING) and priority in by_priority:
            by_priority[priority][status] += n
    return by_status, list(by_priority.values())


def _throughput(now: datetime) -> dict:
    minutes = _window(now)
    done = Q(status=JobStatus.DONE)
    # Filter on finished_at alone so the range scan uses its index (a status filter would
    # make SQLite walk every done job through the status index instead).
    rows = (
        Job.objects.filter(finished_at__gte=minutes[0])
        .annotate(minute=TruncMinute("finished_at"))
        .order_by()
        .values("minute")
        .annotate(jobs=Count("id", filter=done), pages=Sum("pages_done", filter=done))
    )
    per_minute = {row["minute"]: row for row in rows}
    jobs = [per_minute.get(m, {}).get("jobs") or 0 for m in minutes]
    pages = [per_minute.get(m, {}).get("pages") or 0 for m in minutes]
    labels = [f"{m:%H:%M}" for m in minutes]
    return {
        "jobs": Chart.build(jobs, labels),
        "pages": Chart.build(pages, labels),
        "jobs_per_min": sum(jobs) / WINDOW_MINUTES,
        "pages_per_min": sum(pages) / WINDOW_MINUTES,
        "jobs_last_hour": sum(jobs),
        "pages_last_hour": sum(pages),
    }


def _workers(now: datetime) -> tuple[list[WorkerRow], int]:
    running = Job.objects.filter(status=JobStatus.RUNNING).order_by("started_at")
    workers = list(
        Worker.objects.order_by("name").prefetch_related(Prefetch("jobs", queryset=running, to_attr="running"))[
            : WORKER_LIMIT + 1
        ]
    )
    rows = [
        WorkerRow(w, actions.status(w, settings.WORKER_OFFLINE_SECONDS), [_running_job(j, now) for j in w.running])
        for w in workers[:WORKER_LIMIT]
    ]
    return rows, max(len(workers) - WORKER_LIMIT, 0)


def _depth(now: datetime, pending: int) -> Chart:
    """Pending jobs per minute over the last hour from the recorded samples; the last point is now."""
    minutes = _window(now)
    samples = dict(QueueSample.objects.filter(minute__gte=minutes[0]).values_list("minute", "pending"))
    values = [samples.get(m) for m in minutes[:-1]] + [pending]
    return Chart.build(values, [f"{m:%H:%M}" for m in minutes])


def _window(now: datetime) -> list[datetime]:
    """The minutes of the last hour, oldest first, the current minute last."""
    start = (now - timedelta(minutes=WINDOW_MINUTES - 1)).replace(second=0, microsecond=0)
    return [start + timedelta(minutes=i) for i in range(WINDOW_MINUTES)]


def build() -> dict:
    """Compute a fresh snapshot (about seven queries, none unbounded)."""
    now = timezone.now()
    by_status, by_priority = _counts()
    workers, more_workers = _workers(now)
    failures = list(
        Job.objects.filter(status=JobStatus.DEAD)
        .order_by("-finished_at")
        .only("id", "filename", "type", "attempts", "max_attempts", "finished_at", "last_error")[:FAILURE_LIMIT]
    )
    return {
        "now": now,
        "by_status": by_status,
        "total": sum(by_status.values()),
        "by_priority": by_priority,
        "throughput": _throughput(now),
        "workers": workers,
        "more_workers": more_workers,
        "failures": failures,
        "depth": _depth(now, by_status[JobStatus.PENDING]),
    }


_cache: tuple[float, dict] | None = None


def cached(max_age: float = CACHE_SECONDS) -> dict:
    """The process's latest snapshot when it is younger than ``max_age`` seconds, else a fresh one."""
    global _cache
    if _cache is None or time.monotonic() - _cache[0] > max_age:
        _cache = (time.monotonic(), build())
    return _cache[1]


def fresh() -> dict:
    return cached(max_age=0)


def record_sample(snapshot: dict) -> None:
    """Keep one queue-depth row per minute (the first process to write a minute wins) for 24 hours."""
    minute = snapshot["now"].replace(second=0, microsecond=0)
    counts = snapshot["by_status"]
    try:
        with transaction.atomic():
            QueueSample.objects.get_or_create(
                minute=minute, defaults={"pending": counts[JobStatus.PENDING], "running": counts[JobStatus.RUNNING]}
            )
            QueueSample.objects.filter(minute__lt=minute - SAMPLE_RETENTION).delete()
    except IntegrityError:
        pass  # another server process wrote this minute first
