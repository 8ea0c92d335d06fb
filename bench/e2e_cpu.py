"""End to end on CPU: the fixture PDFs converted by 2 real worker processes, pages per second.

The fixture PDFs (``/work/shared/fixtures/pdfs``, without ``encrypted-file.pdf``) are
copied into a temporary folder — several times in a full run, each copy made distinct by
a trailing comment after ``%%EOF`` so it is a new blob — ingested with ``manage.py
ingest``, and converted by two ``python -m pdf_worker --converter pdfium`` processes
against a daphne server with local storage. BlobForge's pages/s come from the jobs' own
timestamps (first ``started_at`` to last ``finished_at``): everything is ingested before the
workers start, and their start-up ends before their first claim, so neither counts.

Ceilings, each with 2 processes like the 2 workers, measured before and after the
BlobForge run (the mean is used):
* the worker's own pdfium converter in a bare loop (the same work without the queue,
  downloads, zips, uploads and child-process isolation) — the coordination overhead ratio;
* bare pypdfium2 text extraction (``get_text_range`` per page) — the raw library speed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _common import REPO, bench_server, parse_args, prepare, report

from tests.components.worker import wait_for

FIXTURES = Path("/work/shared/fixtures/pdfs")
SKIP = {"encrypted-file.pdf"}


def make_copies(folder: Path, copies: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for source in sorted(FIXTURES.glob("*.pdf")):
        if source.name in SKIP:
            continue
        data = source.read_bytes()
        for n in range(copies):
            target = folder / f"{source.stem}-{n}.pdf"
            target.write_bytes(data + f"\n%bench copy {n} {time.time_ns()}\n".encode())
            made.append(target)
    return made


def start_worker(server, name: str, secret: str, workdir: Path) -> subprocess.Popen:
    """A real ``python -m pdf_worker --converter pdfium`` process (log in ``workdir``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBFORGE_")}
    env |= {"BLOBFORGE_SERVER_URL": server.base_url, "BLOBFORGE_WORKER_ID": name, "BLOBFORGE_WORKER_SECRET": secret}
    log = (workdir / f"{name}.log").open("ab")
    command = [sys.executable, "-m", "pdf_worker", "--converter", "pdfium", "--work-dir", str(workdir / name)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _converter_pages(path: str) -> int:
    from pdf_worker.converters.pdfium import PdfiumConverter

    with tempfile.TemporaryDirectory() as out:
        return PdfiumConverter().convert(Path(path), Path(out)).pages


def _pypdfium_pages(path: str) -> int:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        for page in document:
            textpage = page.get_textpage()
            textpage.get_text_range()
            textpage.close()
            page.close()
        return len(document)
    finally:
        document.close()


def bare_pages_per_second(function, paths: list[Path], processes: int = 2) -> tuple[float, int]:
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(function, [str(paths[0])] * processes))  # imports and first-call costs, not timed
        started = time.perf_counter()
        pages = sum(pool.map(function, [str(p) for p in paths]))
        return pages / (time.perf_counter() - started), pages


JOB_TIMES = """
import json
from django.db.models import Max, Min
from jobs.models import Job
done = Job.objects.filter(status="done")
span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
stages = {}
for job in done:
    for stage, seconds in (job.result.get("seconds") or {}).items():
        stages[stage] = stages.get(stage, 0) + seconds
busy = sum(((j.finished_at - j.started_at).total_seconds() for j in done), 0.0)
print(json.dumps({
    "stages": {k: round(v / max(done.count(), 1), 3) for k, v in stages.items()},
    "job_seconds": round(busy / max(done.count(), 1), 3),
    "done": done.count(),
    "other": Job.objects.exclude(status="done").count(),
    "pages": sum(j.result.get("pages") or 0 for j in done),
    "seconds": (span["last"] - span["first"]).total_seconds() if span["first"] else 0,
}))
"""


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    copies = 1 if args.tiny else 6
    workdir = Path(tempfile.mkdtemp(prefix="bf-bench-e2e-"))
    workers: list[subprocess.Popen] = []
    try:
        paths = make_copies(workdir / "pdfs", copies)
        converter_before, _ = bare_pages_per_second(_converter_pages, paths)
        raw_before, _ = bare_pages_per_second(_pypdfium_pages, paths)
        with bench_server() as server:
            credentials, token = prepare(
                server,
                workers=2,
                code="from accounts.tokens import create_token\nresult = create_token('bench', ['read'])[1]\n",
            )
            stats = server.token_session(token)
            # Everything is queued first, so the workers never wait for the ingest.
            server.manage("ingest", str(workdir / "pdfs"), "--no-progress")
            started = time.perf_counter()
            workers = [start_worker(server, name, secret, workdir) for name, secret in credentials]

            def finished():
                counts = stats.get(server.base_url + "/api/v1/stats", timeout=10).json()["by_status"]
                return counts.get("pending", 0) + counts.get("running", 0) == 0 and counts

            wait_for(finished, 60 if args.tiny else 600, "every job to finish", interval=0.5)
            wall = time.perf_counter() - started
            result = json.loads(server.shell(JOB_TIMES).strip().splitlines()[-1])
            stop(workers)
        # A second measurement evens out a noisy machine; the tiny run only proves the script works.
        converter_after, raw_after = converter_before, raw_before
        if not args.tiny:
            converter_after, _ = bare_pages_per_second(_converter_pages, paths)
            raw_after, _ = bare_pages_per_second(_pypdfium_pages, paths)
    finally:
        stop(workers)
        shutil.rmtree(workdir, ignore_errors=True)
    converter = (converter_before + converter_after) / 2
    raw = (raw_before + raw_after) / 2
    blobforge = result["pages"] / result["seconds"] if result["seconds"] else 0.0
    rows = [
        [
            len(paths),
            result["pages"],
            blobforge,
            converter,
            f"{100 * blobforge / converter:.0f} %",
            raw,
            f"{100 * blobforge / raw:.0f} %",
            f"{wall:.1f}",
        ]
    ]
    notes = [
        f"jobs done: {result['done']}, not done: {result['other']}; a job took {result['job_seconds']:.3f} s "
        f"from claim to completion on average, of which the worker's own stage timings (s): "
        + ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in result["stages"].items()),
        f"ceilings before/after the run: converter {converter_before:.1f}/{converter_after:.1f} pages/s, "
        f"pypdfium2 {raw_before:.1f}/{raw_after:.1f} pages/s",
        "wall s: from starting the workers (their start-up included) until no job is pending or running",
    ]
    report(
        args,
        "End to end on CPU (2 pdfium workers)",
        [
            "PDFs",
            "pages",
            "BlobForge pages/s",
            "bare converter pages/s (2 procs)",
            "vs converter",
            "bare pypdfium2 text pages/s (2 procs)",
            "vs pypdfium2",
            "wall s",
        ],
        rows,
        notes,
    )
    return 0 if result["other"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
