"""Job cycles per second with N simulated workers, on SQLite and PostgreSQL, plus server memory.

A cycle is what a worker does per job over HTTP: claim, heartbeat, upload-url, PUT a
small output zip to the signed storage URL (local storage: served by the same daphne),
complete. Each simulated worker is an asyncio task with its own keep-alive connections
and its own worker identity; the load generator is this script's process, the server is
a separate daphne process, and the generator's CPU time is reported so one can see it is
not the bottleneck.

Two protocol variants are measured:
* ``classic`` — 5 requests per job: claim, heartbeat, upload-url, PUT, complete.
* ``chained`` — 3 requests per job: upload-url, PUT, complete with ``{"claim": {...}}``
  (complete answers with the next job's claim); no heartbeat, as a job shorter than the
  heartbeat interval needs none (its lease outlives it).

Ceilings measured in the same run:
* bare ASGI: the same number of HTTP round trips, at the same concurrency, against
  ``bench/minimal_asgi.py`` under daphne (the HTTP stack alone);
* Django ``/healthz`` of the BlobForge server (HTTP stack + Django, no database write);
* raw SQLite compare-and-swap claims in one process (the database alone).

After the run: not one job may have been claimed twice (JobEvents pending→running per job).
Server memory: VmHWM/VmRSS of the daphne process after the 64-worker runs.
"""

import asyncio
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _common import (
    REPO,
    Connection,
    bench_server,
    job_event_counts,
    parse_args,
    path_of,
    postgres_available,
    prepare,
    report,
    rss_kib,
)

from tests.components.ports import free_port, wait_for_port

WORKER_API = "/api/v1/worker/"


def output_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("content.md", "# converted\n\nSome text.\n")
        archive.writestr("meta.json", "{}")
    return buffer.getvalue()


OUTPUT = output_zip()
OUTPUT_SPEC = {"size": len(OUTPUT), "sha256": hashlib.sha256(OUTPUT).hexdigest()}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Counters:
    def __init__(self, budget: int):
        self.budget = budget  # jobs still to be claimed in this run
        self.cycles = 0
        self.requests = 0
        self.errors: list[str] = []

    def take(self) -> bool:
        self.budget -= 1
        return self.budget >= 0


async def _call(conn: Connection, counters: Counters, path: str, body: dict, expect=(200,)) -> tuple[int, dict]:
    status, payload = await conn.request("POST", WORKER_API + path, json_body=body)
    counters.requests += 1
    if status not in expect:
        raise RuntimeError(f"POST {path} answered {status}: {payload[:300]!r}")
    return status, (json.loads(payload) if payload else {})


async def claim(api: Connection, counters: Counters, body: dict) -> tuple[int, dict]:
    """Claim; the queue holds more jobs than the run takes, so a 204 (PostgreSQL's SKIP LOCKED
    passing over rows other claims hold) is asked again, a bounded number of times."""
    for _ in range(50):
        status, claimed = await _call(api, counters, "claim", body, expect=(200, 204))
        if status == 200:
            return status, claimed
        await asyncio.sleep(0.01)
    counters.budget += 1  # this worker gives its job back to the run's budget
    return 204, {}


async def simulated_worker(base_url: str, name: str, secret: str, protocol: str, counters: Counters) -> None:
    api = Connection(base_url, {"X-Worker-ID": name, "X-Worker-Secret": secret})
    store = Connection(base_url)
    claim_body = {"job_types": ["pdf"]}
    try:
        status, claimed = 204, None
        if counters.take():
            status, claimed = await claim(api, counters, claim_body)
        while status == 200:
            job_id, lease = claimed["job"]["id"], claimed["lease"]["token"]
            if protocol == "classic":
                await _call(
                    api,
                    counters,
                    f"jobs/{job_id}/heartbeat",
                    {"lease": lease, "stage": "converting", "pages_done": 1, "pages_total": 1},
                )
            _, signed = await _call(api, counters, f"jobs/{job_id}/upload-url", {"lease": lease, "size": len(OUTPUT)})
            put_status, put_body = await store.request(
                signed["method"], path_of(signed["url"]), body=OUTPUT, headers=signed["headers"]
            )
            counters.requests += 1
            if put_status >= 300:
                raise RuntimeError(f"upload answered {put_status}: {put_body[:300]!r}")
            done = {"lease": lease, "output": OUTPUT_SPEC, "result": {"pages": 1}}
            more = counters.take()
            if protocol == "chained" and more:
                done["claim"] = claim_body
            status, answer = await _call(api, counters, f"jobs/{job_id}/complete", done)
            counters.cycles += 1
            if not more:
                break
            claimed = answer.get("next") if protocol == "chained" else None
            status = 200
            if not claimed:
                status, claimed = await claim(api, counters, claim_body)
    except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
        counters.errors.append(f"{name}: {exc}")
    finally:
        await api.close()
        await store.close()


async def _drive(coroutines) -> float:
    started = time.perf_counter()
    await asyncio.gather(*coroutines)
    return time.perf_counter() - started


def run_cycles(server, workers: list[tuple[str, str]], jobs: int, protocol: str) -> dict:
    """Run ``jobs`` cycles (the queue must hold at least that many pending jobs)."""
    counters = Counters(jobs)
    cpu_server, cpu_client = cpu_seconds(server.process.pid), time.process_time()
    elapsed = asyncio.run(
        _drive([simulated_worker(server.base_url, name, secret, protocol, counters) for name, secret in workers])
    )
    return {
        "cycles": counters.cycles,
        "requests": counters.requests,
        "seconds": elapsed,
        "server_cpu": cpu_seconds(server.process.pid) - cpu_server,
        "client_cpu": time.process_time() - cpu_client,
        "errors": counters.errors,
    }


# --- ceilings ------------------------------------------------------------------------------


async def _bare_client(base_url: str, path: str, count: int, method: str, body: bytes) -> None:
    conn = Connection(base_url)
    try:
        for _ in range(count):
            status, _ = await conn.request(method, path, body=body)
            if status != 200:
                raise RuntimeError(f"{method} {path} answered {status}")
    finally:
        await conn.close()


def round_trips_per_second(base_url: str, path: str, concurrency: int, total: int, method: str = "GET") -> float:
    per_client = max(total // concurrency, 1)
    body = b'{"job_types": ["pdf"]}' if method == "POST" else b""
    elapsed = asyncio.run(_drive([_bare_client(base_url, path, per_client, method, body) for _ in range(concurrency)]))
    return per_client * concurrency / elapsed


class MinimalAsgi:
    """``daphne bench.minimal_asgi:application`` on a free port."""

    def __enter__(self) -> str:
        port = free_port()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "bench.minimal_asgi:application"],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, 30, self.process)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)


def raw_sqlite_claims_per_second(jobs: int) -> float:
    """Compare-and-swap claims (BEGIN IMMEDIATE, pick best, guarded UPDATE, event INSERT, COMMIT) in one process."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
        db.executescript(
            """
            PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
            CREATE TABLE job (id INTEGER PRIMARY KEY, status TEXT, type TEXT, claim_rank REAL, lease TEXT);
            CREATE INDEX job_claim ON job (status, type, claim_rank, id);
            CREATE TABLE event (id INTEGER PRIMARY KEY, job_id INTEGER, from_status TEXT, to_status TEXT);
            """
        )
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO job (status, type, claim_rank) VALUES ('pending', 'pdf', ?)", [(i % 997,) for i in range(jobs)]
        )
        db.execute("COMMIT")
        started = time.perf_counter()
        claimed = 0
        while True:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT id FROM job WHERE status='pending' AND type='pdf' ORDER BY claim_rank, id LIMIT 1"
            ).fetchone()
            if row is None:
                db.execute("COMMIT")
                break
            changed = db.execute(
                "UPDATE job SET status='running', lease=? WHERE id=? AND status='pending'",
                (os.urandom(8).hex(), row[0]),
            ).rowcount
            if changed == 1:
                db.execute(
                    "INSERT INTO event (job_id, from_status, to_status) VALUES (?, 'pending', 'running')", (row[0],)
                )
                claimed += 1
            db.execute("COMMIT")
        rate = claimed / (time.perf_counter() - started)
        db.close()
        return rate


# --- the run -------------------------------------------------------------------------------


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda parser: (
            parser.add_argument("--protocols", default="classic,chained", help="comma-separated variants"),
            parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated databases"),
        ),
    )
    concurrency = (1, 4) if args.tiny else (1, 4, 16, 64)
    jobs_for = (lambda n: 8) if args.tiny else (lambda n: {1: 100, 4: 200, 16: 400, 64: 640}[n])
    # The tiny run (CI) proves the script works; PostgreSQL only adds a slow migrate to that.
    databases = [d for d in args.databases.split(",") if d == "sqlite" or (postgres_available() and not args.tiny)]
    protocols = args.protocols.split(",")
    rows, notes, memory = [], [], {}
    with MinimalAsgi() as bare_url:
        bare = {n: round_trips_per_second(bare_url, "/", n, jobs_for(n) * 5, "POST") for n in concurrency}
    sqlite_raw = raw_sqlite_claims_per_second(2000 if args.tiny else 50_000)
    for database in databases:
        with bench_server(database) as server:
            workers, _ = prepare(
                server, workers=max(concurrency), jobs=len(protocols) * sum(jobs_for(n) for n in concurrency)
            )
            healthz = {n: round_trips_per_second(server.base_url, "/healthz", n, jobs_for(n) * 5) for n in concurrency}
            for protocol in protocols:
                for n in concurrency:
                    result = run_cycles(server, workers[:n], jobs_for(n), protocol)
                    load = os.getloadavg()[0]
                    if result["errors"]:
                        notes.append(
                            f"{database}/{protocol}/{n}: {len(result['errors'])} errors, first: {result['errors'][0]}"
                        )
                    per_cycle = result["requests"] / max(result["cycles"], 1)
                    cycles_s = result["cycles"] / result["seconds"]
                    rows.append(
                        [
                            database,
                            protocol,
                            n,
                            result["cycles"],
                            cycles_s,
                            result["requests"] / result["seconds"],
                            bare[n],
                            f"{100 * result['requests'] / result['seconds'] / bare[n]:.0f} %",
                            healthz[n],
                            bare[n] / per_cycle,
                            f"{1000 * result['server_cpu'] / max(result['cycles'], 1):.1f}",
                            f"{1000 * result['client_cpu'] / max(result['cycles'], 1):.1f}",
                            f"{load:.1f}",
                        ]
                    )
                    if n == max(concurrency):
                        memory[(database, protocol)] = rss_kib(server.process.pid)
            counts = job_event_counts(server)
            twice = counts["claimed_twice"]
            notes.append(
                f"{database}: {counts['done']} jobs done, {counts['claims']} claims, {counts['completions']} completions; "
                f"jobs claimed more than once: {twice}" + ("" if twice == 0 else "  ← DOUBLE RUNS")
            )
            after = rss_kib(server.process.pid)
            notes.append(
                f"{database}: daphne memory peak (VmHWM) {after['VmHWM'] / 1024:.0f} MiB, "
                f"now (VmRSS, after the runs) {after['VmRSS'] / 1024:.0f} MiB"
                + "".join(
                    f"; right after the {max(concurrency)}-worker {proto} run: VmRSS {mem['VmRSS'] / 1024:.0f} MiB"
                    for (db, proto), mem in memory.items()
                    if db == database
                )
            )
    notes.append(f"raw SQLite compare-and-swap claims in one process: {sqlite_raw:,.0f} claims/s")
    report(
        args,
        "Job cycles per second",
        [
            "database",
            "protocol",
            "workers",
            "jobs",
            "cycles/s",
            "req/s",
            "bare ASGI req/s",
            "req/s vs bare",
            "Django /healthz req/s",
            "ceiling cycles/s",
            "server CPU ms/cycle",
            "client CPU ms/cycle",
            "load 1m",
        ],
        rows,
        notes,
    )
    return 1 if any("errors" in note or "DOUBLE" in note for note in notes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
