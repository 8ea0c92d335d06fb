"""Shared parts of the benchmark scripts: arguments, machine details, tables, recording,
a lean HTTP/1.1 client for load generation, and bulk setup inside a server's database.

Every script runs as ``.venv/bin/python bench/<name>.py [--tiny] [--no-record]``; this
module puts the repository root on ``sys.path`` so the scripts can reuse the real
components the tests start (``tests.components.server.ServerProcess`` and friends).
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.components.server import ServerProcess, fresh_postgres_database  # noqa: E402

RESULTS = REPO / "docs" / "benchmarks.md"
POSTGRES_URL = os.environ.get("BLOBFORGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS_HEADER = """# Benchmarks

Results appended by the scripts in `bench/` (newest last). Each script measures BlobForge
and a ceiling in the same run, so the ratio means something on a noisy, shared machine;
the load average next to each result says how noisy it was. How to run them, what each
measures and the analysis of the numbers: see the top of each script and the
"Findings" section below.

"""


# --- arguments, machine, output ------------------------------------------------------------


def parse_args(description: str, configure=None) -> argparse.Namespace:
    """The common options; a full run first waits (up to ``--max-wait``) for the machine to calm down."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long run that only proves the script works")
    parser.add_argument("--no-record", action="store_true", help=f"do not append the results to {RESULTS.name}")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=600,
        metavar="SECONDS",
        help="before a full run, wait up to this long for a 1-minute load average below 2.5 (default 600)",
    )
    if configure:
        configure(parser)
    args = parser.parse_args()
    if not args.tiny:
        wait_for_quiet_machine(args.max_wait)
    return args


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kib / 1024**2:.1f} GiB"
    except (OSError, StopIteration):
        ram = "unknown"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": platform.python_version(),
        "commit": (commit.stdout.strip() or "unknown") + (" (+ uncommitted changes)" if dirty.stdout.strip() else ""),
    }


def markdown_table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def report(args: argparse.Namespace, title: str, headers: list[str], rows: list[list], notes: list[str] = ()) -> None:
    """Print the table and (unless --no-record) append it with the machine details to docs/benchmarks.md."""
    table = markdown_table(headers, rows)
    print(f"\n## {title}\n\n{table}\n")
    for note in notes:
        print(f"- {note}")
    if args.no_record:
        return
    info = machine()
    mode = "tiny" if args.tiny else "full"
    lines = [
        f"\n### {title} — {info['date']} ({mode} run)\n",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, Python {info['python']}, "
        f"commit {info['commit']}. Load average (1/5/15 min) at the end: {load_average()}.\n",
        table,
        "",
        *[f"- {note}" for note in notes],
    ]
    if not RESULTS.exists():
        RESULTS.write_text(RESULTS_HEADER)
    with RESULTS.open("a") as out:
        out.write("\n".join(lines).rstrip() + "\n")
    print(f"(appended to {RESULTS.relative_to(REPO)})")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def wait_for_quiet_machine(max_wait: float = 600, threshold: float = 2.5) -> str:
    """Before a full run: wait (up to ``max_wait`` s) for the 1-minute load to drop below ``threshold``."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] > threshold and time.monotonic() < deadline:
        print(f"load average {load_average()}: waiting for a quieter machine …", flush=True)
        time.sleep(15)
    return load_average()


# --- servers -------------------------------------------------------------------------------


@contextmanager
def bench_server(database: str = "sqlite", **env: str) -> Iterator[ServerProcess]:
    """A BlobForge daphne server with its own data dir (and its own fresh PostgreSQL database)."""
    data_dir = Path(tempfile.mkdtemp(prefix="bf-bench-"))
    extra = {"BLOBFORGE_LOG_LEVEL": "WARNING", **env}
    if database == "postgresql":
        extra["DATABASE_URL"] = fresh_postgres_database(POSTGRES_URL)
    server = ServerProcess(data_dir / "server", extra)
    try:
        yield server.start()
    finally:
        server.stop(kill=True)
        if database == "postgresql":
            _drop_database(extra["DATABASE_URL"])
        shutil.rmtree(data_dir, ignore_errors=True)


def _drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return False


def rss_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS (now) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    return values


PREPARE = """
import hashlib, json, random
from datetime import timedelta
from django.db import transaction
from django.utils import timezone
from jobs.models import Blob, Job, JobEvent, JobStatus
from jobs.queue import claim_rank
from workers import actions

workers = [list(actions.create(f"{prefix}-{{i}}")) for i in range({workers})]
workers = [[worker.name, secret] for worker, secret in workers]
random.seed(7)
now = timezone.now()
for start in range(0, {jobs}, 5000):
    n = min(5000, {jobs} - start)
    with transaction.atomic():
        blobs = Blob.objects.bulk_create(
            [Blob(sha256=hashlib.sha256(f"{prefix}-{{start + i}}".encode()).hexdigest(), size=1000, stored=True)
             for i in range(n)]
        )
        jobs = []
        for blob in blobs:
            priority = random.randint(1, 5)
            at = now - timedelta(seconds=random.uniform(0, {spread_seconds}))
            jobs.append(Job(type="pdf", blob=blob, filename=blob.sha256[:8] + ".pdf", priority=priority,
                            status=JobStatus.PENDING, available_at=at, claim_rank=claim_rank(priority, at)))
        jobs = Job.objects.bulk_create(jobs)
        JobEvent.objects.bulk_create(
            [JobEvent(job_id=job.pk, to_status=JobStatus.PENDING, actor="bench", message="submitted") for job in jobs]
        )
result = None
{code}
print(json.dumps({{"workers": workers, "result": result}}))
"""


def prepare(
    server: ServerProcess, *, workers: int = 0, jobs: int = 0, spread_seconds: float = 0, code: str = ""
) -> tuple[list[tuple[str, str]], object]:
    """One ``manage.py shell`` (each costs a Django start-up, seconds on a busy machine) that creates
    ``workers`` workers, bulk-inserts ``jobs`` pending jobs across priorities 1–5 and runs ``code``.

    Jobs get ``claim_rank`` from ``jobs.queue.claim_rank``, their blobs, and a submit event each;
    ``available_at`` is spread over the last ``spread_seconds`` so claim order is not just by id.
    ``code`` may set ``result`` to something JSON-serialisable. Returns ``(workers, result)``.
    """
    script = PREPARE.format(
        prefix=f"bench-{uuid.uuid4().hex[:8]}", workers=workers, jobs=jobs, spread_seconds=spread_seconds, code=code
    )
    answer = json.loads(server.shell(script).strip().splitlines()[-1])
    return [tuple(pair) for pair in answer["workers"]], answer["result"]


def job_event_counts(server: ServerProcess) -> dict[str, int]:
    """Jobs done, and how many jobs were claimed more than once (pending→running events > 1)."""
    code = """
import json
from django.db.models import Count
from jobs.models import Job, JobEvent
claims = JobEvent.objects.filter(from_status="pending", to_status="running").values("job").annotate(n=Count("id"))
print(json.dumps({
    "done": Job.objects.filter(status="done").count(),
    "claims": sum(row["n"] for row in claims),
    "claimed_twice": sum(1 for row in claims if row["n"] > 1),
    "completions": JobEvent.objects.filter(to_status="done").count(),
}))
"""
    return json.loads(server.shell(code).strip().splitlines()[-1])


# --- a lean HTTP/1.1 keep-alive client -----------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection driven by asyncio streams.

    Deliberately minimal (Content-Length or chunked bodies, no redirects, no TLS): a
    request costs the load generator a few tens of microseconds, so on a 2-core machine
    nearly all CPU is left to the server being measured.
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.default_headers = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer:
            self.writer.close()
            self.reader = self.writer = None

    async def request(
        self, method: str, path: str, *, json_body=None, body: bytes = b"", headers: dict | None = None
    ) -> tuple[int, bytes]:
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        all_headers = {**self.default_headers, **(headers or {}), "Content-Length": str(len(body))}
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_headers.items()) + "\r\n"
        for attempt in (1, 2):
            if self.writer is None:
                await self._connect()
            try:
                self.writer.write(head.encode() + body)
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if "content-length" in fields:
            payload = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readexactly(2)
            payload = b"".join(chunks)
        else:
            payload = await self.reader.read()
            await self.close()
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, payload


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")
