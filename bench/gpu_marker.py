"""marker on GPUs: pages/second per GPU through BlobForge, next to marker's own batch command.

    .venv/bin/python bench/gpu_marker.py FOLDER [--gpus 0,1] [--slots-per-gpu 2] [--chunk-pages 50]
    .venv/bin/python bench/gpu_marker.py FOLDER --dry-run      # pdfium on the CPU, 2 slots: CI's smoke run

It starts a BlobForge server (daphne, SQLite, local storage) in a temporary folder,
ingests every PDF in FOLDER, then starts one ``blobforge-worker`` with one slot per GPU ×
``--slots-per-gpu`` and waits until every job is finished. Reported for BlobForge:

* per GPU: pages converted by the slots pinned to that GPU ÷ the conversion window
  (first claim → last completion, from the jobs' own timestamps; model loading happens
  before the first claim and is shown separately as start-up);
* total: all pages ÷ the same window.

Then marker's own batch command converts the same files: ``marker FOLDER --workers N``
on one GPU, ``marker_chunk_convert`` with ``NUM_DEVICES``/``NUM_WORKERS`` on several.
Its wall time includes its model loading (it cannot be separated from outside), so
its pages/second is a lower bound. ``--skip-baseline`` leaves it out. ``--record`` appends
the table to docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from _common import REPO, RESULTS, RESULTS_HEADER  # also puts the repository on sys.path

from tests.components.server import ServerProcess

POLL_SECONDS = 1.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of PDFs (searched recursively)")
    parser.add_argument("--gpus", default="0", help="GPUs to use, as CUDA_VISIBLE_DEVICES names them (default 0)")
    parser.add_argument("--slots-per-gpu", type=int, default=1, help="conversion processes per GPU (default 1)")
    parser.add_argument("--chunk-pages", type=int, default=50, help="the worker's --chunk-pages (default 50)")
    parser.add_argument("--converter", choices=["marker", "pdfium"], default="marker")
    parser.add_argument(
        "--dry-run", action="store_true", help="pdfium on the CPU with 2 slots and no marker baseline (CI smoke run)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="do not run marker's own batch command")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds (default 3600)")
    parser.add_argument("--record", action="store_true", help=f"append the results to {RESULTS.relative_to(REPO)}")
    args = parser.parse_args()
    if args.dry_run:
        args.converter, args.skip_baseline = "pdfium", True
    args.gpu_list = [g.strip() for g in args.gpus.split(",") if g.strip()]
    return args


def count_pages(pdfs: list[Path]) -> int:
    import pypdfium2 as pdfium

    total = 0
    for pdf in pdfs:
        try:
            document = pdfium.PdfDocument(pdf)
        except pdfium.PdfiumError:
            continue  # unreadable: BlobForge fails it, marker skips it
        total += len(document)
        document.close()
    return total


def worker_command(args: argparse.Namespace, work_dir: Path) -> list[str]:
    command = [sys.executable, "-m", "pdf_worker", "--converter", args.converter, "--work-dir", str(work_dir)]
    command += ["--chunk-pages", str(args.chunk_pages)]
    if args.dry_run:
        return command + ["--device", "cpu", "--slots", "2"]
    return command + ["--gpus", ",".join(args.gpu_list), "--slots-per-gpu", str(args.slots_per_gpu)]


def wait_until_finished(server: ServerProcess, token: str, worker: subprocess.Popen, deadline: float) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode} before the jobs were finished")
        unfinished = 0
        for status in ("pending", "running"):
            answer = session.get(f"{server.base_url}/api/v1/jobs", params={"status": status, "limit": 1}, timeout=30)
            answer.raise_for_status()
            unfinished += len(answer.json()["results"])
        if not unfinished:
            return
        time.sleep(POLL_SECONDS)
    raise SystemExit("timed out waiting for the jobs (--timeout)")


def job_rows(server: ServerProcess) -> list[dict]:
    code = (
        "import json\nfrom jobs.models import Job\n"
        "print(json.dumps([{'status': j.status, 'result': j.result or {}, "
        "'started': j.started_at.timestamp() if j.started_at else None, "
        "'finished': j.finished_at.timestamp() if j.finished_at else None} for j in Job.objects.all()]))\n"
    )
    return json.loads(server.shell(code).strip().splitlines()[-1])


def run_blobforge(args: argparse.Namespace, tmp: Path) -> dict:
    server = ServerProcess(tmp / "server").start()
    worker = None
    try:
        worker_id, secret = server.create_worker("bench-gpu")
        token = server.create_token("read")
        server.manage("ingest", str(args.folder.resolve()), "--json")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBFORGE_")} | {
            "BLOBFORGE_SERVER_URL": server.base_url,
            "BLOBFORGE_WORKER_ID": worker_id,
            "BLOBFORGE_WORKER_SECRET": secret,
        }
        if os.environ.get("BLOBFORGE_MARKER_MODELS"):
            env["BLOBFORGE_MARKER_MODELS"] = os.environ["BLOBFORGE_MARKER_MODELS"]
        log = (tmp / "worker.log").open("wb")
        launched = time.time()
        worker = subprocess.Popen(
            worker_command(args, tmp / "work"), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until_finished(server, token, worker, time.monotonic() + args.timeout)
        rows = job_rows(server)
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(60)
        server.stop()
    done = [row for row in rows if row["status"] == "done"]
    if not done:
        raise SystemExit(f"no job finished; see {tmp / 'worker.log'}:\n" + (tmp / "worker.log").read_text()[-3000:])
    first, last = min(row["started"] for row in done), max(row["finished"] for row in done)
    window = max(last - first, 1e-6)
    per_gpu: dict[str, int] = {}
    for row in done:
        gpu = row["result"].get("gpu") or "cpu"
        per_gpu[gpu] = per_gpu.get(gpu, 0) + int(row["result"].get("pages") or 0)
    return {
        "jobs": len(rows),
        "failed": len(rows) - len(done),
        "pages": sum(per_gpu.values()),
        "window": window,
        "startup": first - launched,
        "per_gpu": per_gpu,
    }


def run_marker_baseline(args: argparse.Namespace, tmp: Path) -> tuple[float | None, str]:
    """Wall seconds of marker's own batch command over the same folder, and the command (None when it cannot run)."""
    workers = str(args.slots_per_gpu)
    if len(args.gpu_list) == 1:
        program, extra_env = "marker", {"CUDA_VISIBLE_DEVICES": args.gpu_list[0]}
        command = [program, str(args.folder.resolve()), "--output_dir", str(tmp / "marker-out"), "--workers", workers]
    else:
        program = "marker_chunk_convert"
        extra_env = {
            "CUDA_VISIBLE_DEVICES": ",".join(args.gpu_list),
            "NUM_DEVICES": str(len(args.gpu_list)),
            "NUM_WORKERS": workers,
        }
        command = [program, str(args.folder.resolve()), str(tmp / "marker-out")]
    shown = " ".join(f"{k}={v}" for k, v in extra_env.items()) + " " + " ".join(command)
    if shutil.which(program) is None:
        return None, f"{shown}  (skipped: {program} not found; pip install marker-pdf)"
    env = os.environ | extra_env
    models = os.environ.get("BLOBFORGE_MARKER_MODELS")
    if models:
        env |= {"MODEL_CACHE_DIR": f"{models}/models", "HF_HOME": f"{models}/huggingface", "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        return None, f"{shown}  (failed with {done.returncode}: {done.stderr[-500:]})"
    return time.monotonic() - started, shown


def marker_version() -> str:
    try:
        from importlib.metadata import version

        return version("marker-pdf")
    except Exception:  # noqa: BLE001 - not installed
        return "not installed"


def gpu_names() -> str:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return "none"
    done = subprocess.run([smi, "--query-gpu=index,name", "--format=csv,noheader"], capture_output=True, text=True)
    return "; ".join(done.stdout.strip().splitlines()) or "none"


def main() -> int:
    args = parse_args()
    pdfs = sorted(args.folder.rglob("*.pdf"))
    if not pdfs:
        raise SystemExit(f"no PDFs under {args.folder}")
    with tempfile.TemporaryDirectory(prefix="bf-gpu-bench-") as scratch:
        tmp = Path(scratch)
        pages = count_pages(pdfs)
        print(f"{len(pdfs)} PDFs, {pages} pages; converter {args.converter}; marker-pdf {marker_version()}")
        slots = "2 on the CPU" if args.dry_run else f"{args.slots_per_gpu} per GPU"
        print(f"GPUs: {gpu_names()}; slots: {slots}")
        ours = run_blobforge(args, tmp)
        baseline, baseline_command = (None, "skipped (--skip-baseline)")
        if not args.skip_baseline:
            baseline, baseline_command = run_marker_baseline(args, tmp)

    lines = [
        f"BlobForge: {ours['jobs']} jobs ({ours['failed']} failed), {ours['pages']} pages in "
        f"{ours['window']:.1f}s after {ours['startup']:.1f}s of start-up (models loaded once per slot)",
        "",
        "| GPU | BlobForge pages/s | marker pages/s |",
        "|---|---|---|",
    ]
    per_device_marker = baseline and pages / baseline / len(args.gpu_list)
    for gpu, done_pages in sorted(ours["per_gpu"].items()):
        marker_cell = f"{per_device_marker:.2f}" if per_device_marker else "-"
        lines.append(f"| {gpu} | {done_pages / ours['window']:.2f} | {marker_cell} |")
    total_marker = f"{pages / baseline:.2f}" if baseline else "-"
    lines.append(f"| total | {ours['pages'] / ours['window']:.2f} | {total_marker} |")
    lines += ["", f"marker's own batch command: {baseline_command}"]
    if baseline:
        lines.append(f"marker: {pages} pages in {baseline:.1f}s wall (model loading included)")
    print("\n".join(lines))
    if args.record and not args.dry_run:
        if not RESULTS.exists():
            RESULTS.write_text(RESULTS_HEADER)
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(
                f"\n### marker on GPUs ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()})\n\n"
                f"GPUs: {gpu_names()}; marker-pdf {marker_version()}; {len(pdfs)} PDFs, {pages} pages; "
                f"{args.slots_per_gpu} slot(s) per GPU, --chunk-pages {args.chunk_pages}\n\n" + "\n".join(lines) + "\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
