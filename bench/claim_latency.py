"""Claim latency p50/p99 with 0, 10,000 and 100,000 pending jobs across all priorities.

Jobs are bulk-inserted (``bulk_create`` in ``manage.py shell``, ``claim_rank`` from
``jobs.queue.claim_rank``, ``available_at`` spread over the last day so aging matters).
At each depth one worker claims and releases a job again and again:

* over HTTP — what a worker sees (one keep-alive connection, the claim request only);
* in process — ``jobs.queue.claim`` itself, timed inside ``manage.py shell`` (the database part).

Ceiling: the same HTTP round trip to Django's ``/healthz`` on the same server (no
database). The query plan of the claim query is printed to show ``job_claim_idx`` at work.
"""

import asyncio
import json
import time

from _common import (
    Connection,
    bench_server,
    parse_args,
    percentile,
    postgres_available,
    prepare,
    report,
)

IN_PROCESS = """
import time
from django.db import connection
from workers.models import Worker
from jobs import queue
worker = Worker.objects.get(name={name!r})
samples = []
for _ in range({samples}):
    started = time.perf_counter()
    job, lease = queue.claim(worker, ["pdf"])
    samples.append(time.perf_counter() - started)
    queue.release(worker, job.pk, lease.token, reason="bench")
query = Job.objects.filter(status=JobStatus.PENDING, type__in=["pdf"]).order_by("claim_rank", "id").values("id")[:3]
sql, params = query.query.sql_with_params()
with connection.cursor() as cursor:
    if connection.vendor == "sqlite":
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " / ".join(row[-1] for row in cursor.fetchall())
    else:
        cursor.execute("EXPLAIN " + sql, params)
        plan = " / ".join(row[0].strip() for row in cursor.fetchall())
result = {{"samples": samples, "plan": plan, "pending": Job.objects.filter(status="pending").count()}}
"""


async def http_samples(base_url: str, name: str, secret: str, count: int) -> list[float]:
    """Claim (timed) then release (not timed), ``count`` times."""
    api = Connection(base_url, {"X-Worker-ID": name, "X-Worker-Secret": secret})
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            status, body = await api.request("POST", "/api/v1/worker/claim", json_body={"job_types": ["pdf"]})
            samples.append(time.perf_counter() - started)
            if status == 204:
                continue
            if status != 200:
                raise RuntimeError(f"claim answered {status}: {body[:200]!r}")
            claimed = json.loads(body)
            status, body = await api.request(
                "POST",
                f"/api/v1/worker/jobs/{claimed['job']['id']}/release",
                json_body={"lease": claimed["lease"]["token"], "reason": "bench"},
            )
            if status != 200:
                raise RuntimeError(f"release answered {status}: {body[:200]!r}")
    finally:
        await api.close()
    return samples


async def healthz_samples(base_url: str, count: int) -> list[float]:
    conn = Connection(base_url)
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await conn.request("GET", "/healthz")
            samples.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return samples


def ms(value: float) -> float:
    return value * 1000


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    depths = (0, 1_000) if args.tiny else (0, 10_000, 100_000)
    samples = 20 if args.tiny else 300
    databases = ["sqlite"] + (["postgresql"] if postgres_available() and not args.tiny else [])
    rows, notes = [], []
    for database in databases:
        with bench_server(database) as server:
            (name, secret), (other, _) = prepare(server, workers=2)[0]
            pending = 0
            for depth in depths:
                measure = IN_PROCESS.format(name=other, samples=samples)
                if depth == 0:
                    # An empty queue answers 204: time that, then give the in-process loop one job.
                    over_http = asyncio.run(http_samples(server.base_url, name, secret, samples))
                    _, inside = prepare(server, jobs=1, code=measure)
                    pending = 1
                else:
                    _, inside = prepare(server, jobs=depth - pending, spread_seconds=86_400, code=measure)
                    pending = depth
                    over_http = asyncio.run(http_samples(server.base_url, name, secret, samples))
                ceiling = asyncio.run(healthz_samples(server.base_url, samples))
                rows.append(
                    [
                        database,
                        f"{depth:,}",
                        ms(percentile(over_http, 50)),
                        ms(percentile(over_http, 99)),
                        ms(percentile(inside["samples"], 50)),
                        ms(percentile(inside["samples"], 99)),
                        ms(percentile(ceiling, 50)),
                        ms(percentile(ceiling, 99)),
                    ]
                )
                if depth == depths[-1]:
                    notes.append(f"{database}: claim query plan: {inside['plan']}")
    notes.append(
        f"{samples} samples per cell; HTTP at depth 0 is an empty queue (204); in process at depth 0 has 1 job"
    )
    report(
        args,
        "Claim latency by queue depth",
        [
            "database",
            "pending jobs",
            "HTTP claim p50 ms",
            "HTTP claim p99 ms",
            "queue.claim p50 ms",
            "queue.claim p99 ms",
            "/healthz p50 ms",
            "/healthz p99 ms",
        ],
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
