"""``blobforge-worker``: configuration from the environment and flags, then the run loop."""

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from pdf_worker import __version__, schedule, slots
from pdf_worker.converters import ConverterUnavailable, choose
from pdf_worker.converters.marker import MODELS_ENV, FetchFailed, fetch_models
from pdf_worker.isolation import Deadline
from pdf_worker.worker import Settings, Worker

ENVIRONMENT = """
environment:
  BLOBFORGE_SERVER_URL     the server, e.g. https://blobforge.example.com (required)
  BLOBFORGE_WORKER_ID      this worker's name, from `manage.py workers create NAME` (required)
  BLOBFORGE_WORKER_SECRET  its secret (bfw_…), shown once at creation (required)

  BLOBFORGE_MARKER_MODELS  marker's weights, as `blobforge-worker fetch-models --dest DIR` left them
                           (else marker's own caches: MODEL_CACHE_DIR, HF_HOME, FONT_PATH)

`blobforge-worker fetch-models [--dest DIR]` downloads marker's weights (needs internet).
SIGTERM or Ctrl-C stops claiming and finishes the current jobs within --shutdown-grace
(else releases them); a second signal exits at once.
"""


def _window(text: str) -> schedule.RunWindow:
    try:
        return schedule.parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _gpu_list(text: str) -> list[str]:
    gpus = [part.strip() for part in text.split(",") if part.strip()]
    if not gpus:
        raise argparse.ArgumentTypeError("name at least one GPU, e.g. 0 or 0,1")
    return gpus


def _positive(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blobforge-worker",
        description="Convert PDFs to Markdown for a BlobForge server until told to stop.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--converter",
        choices=["auto", "marker", "pdfium"],
        default="auto",
        help="marker: layout-aware with OCR (marker-pdf, GPU when present; needs its model weights on disk); "
        "pdfium: the PDF's text layer, CPU only, no models; auto (default): marker when it can run, else pdfium",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="claim once: convert at most one job if one is ready (waiting one long-poll), then exit "
        "(with several slots, each slot claims once)",
    )
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=0,
        metavar="N",
        help="exit after converting N jobs, counted over all slots (default 0: no limit)",
    )
    parser.add_argument(
        "--run-window",
        type=_window,
        action="append",
        default=[],
        metavar="HH:MM-HH:MM",
        help="claim new jobs only inside this local-time window; repeatable; may cross midnight "
        "(22:00-06:00). A job running when a window closes is finished. Default: always",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long the current job may take to finish before its lease is "
        "released back to the queue without spending an attempt (default 60)",
    )
    parser.add_argument(
        "--deadline-base",
        type=_positive,
        default=120.0,
        metavar="SECONDS",
        help="a conversion is killed (and the attempt failed) after this many seconds "
        "plus --deadline-per-page for each page (default 120)",
    )
    parser.add_argument(
        "--deadline-per-page",
        type=_positive,
        default=20.0,
        metavar="SECONDS",
        help="seconds added to the conversion deadline per page (default 20)",
    )
    slots_group = parser.add_argument_group("slots and GPUs")
    slots_group.add_argument(
        "--device",
        choices=["auto", "cuda", "cpu"],
        default="auto",
        help="cuda: one slot per GPU (× --slots-per-gpu); cpu: --slots slots, GPUs hidden; "
        "auto (default): cuda when GPUs are found and the converter uses them (marker), else cpu",
    )
    slots_group.add_argument(
        "--gpus",
        type=_gpu_list,
        default=None,
        metavar="0,1,…",
        help="the GPUs to use, as CUDA_VISIBLE_DEVICES names them "
        "(default: CUDA_VISIBLE_DEVICES when set, else every GPU nvidia-smi lists)",
    )
    slots_group.add_argument(
        "--slots-per-gpu",
        type=int,
        default=1,
        metavar="N",
        help="conversion processes per GPU, each with its own job and its own models (default 1)",
    )
    slots_group.add_argument(
        "--slots",
        type=int,
        default=None,
        metavar="N",
        help="conversion processes on the CPU (default 1); each claims its own job",
    )
    slots_group.add_argument(
        "--max-jobs-per-child",
        type=int,
        default=0,
        metavar="N",
        help="restart a conversion process (reloading its models) after N jobs (default 0: never)",
    )
    slots_group.add_argument(
        "--child-memory-limit",
        type=_positive,
        default=0,
        metavar="MB",
        help="restart a conversion process after a job that left it above MB MiB resident (default 0: no limit)",
    )
    parser.add_argument(
        "--chunk-pages",
        type=int,
        default=50,
        metavar="N",
        help="convert documents over N pages in ranges of N pages, with a checkpoint in --work-dir after each, "
        "so a retry resumes after the last finished range (default 50; 0: never split)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="scratch space for downloads and outputs, emptied after each job, and the page-range "
        "checkpoints of long documents (default: a folder named after the worker in the system temp dir)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log detail on stderr (default INFO; DEBUG includes the converter's own output)",
    )
    parser.add_argument("--version", action="version", version=f"blobforge-worker {__version__}")
    return parser


def fetch_models_main(argv: list[str]) -> int:
    """``blobforge-worker fetch-models [--dest DIR]``: download marker's weights on a machine with internet."""
    parser = argparse.ArgumentParser(
        prog="blobforge-worker fetch-models",
        description="Download marker's model weights and font (needs internet and marker-pdf installed). "
        f"Copy DEST to air-gapped workers and set {MODELS_ENV}=DEST there.",
    )
    parser.add_argument(
        "--dest",
        type=Path,
        default=Path(os.environ[MODELS_ENV]) if os.environ.get(MODELS_ENV, "").strip() else None,
        help=f"folder to fill (default: ${MODELS_ENV} when set, else marker's own cache folders)",
    )
    args = parser.parse_args(argv)
    try:
        print(fetch_models(args.dest))
    except FetchFailed as exc:
        print(f"blobforge-worker fetch-models: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fetch-models"]:
        return fetch_models_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("pdf_worker")
    missing = [
        name
        for name in ("BLOBFORGE_SERVER_URL", "BLOBFORGE_WORKER_ID", "BLOBFORGE_WORKER_SECRET")
        if not os.environ.get(name, "").strip()
    ]
    if missing:
        log.error("missing environment variable(s): %s (see blobforge-worker --help)", ", ".join(missing))
        return 2
    for flag in ("max_jobs", "max_jobs_per_child", "chunk_pages"):
        if getattr(args, flag) < 0:
            log.error("--%s must be 0 (no limit) or more", flag.replace("_", "-"))
            return 2
    try:
        converter, why = choose(args.converter)
    except ConverterUnavailable as exc:
        log.error("converter marker cannot run: %s", exc)
        return 2
    log.info("converter: %s (%s)", converter, why)
    detected = slots.detect_gpus() if args.device != "cpu" else []
    try:
        device, specs = slots.plan(
            device=args.device,
            converter=converter,
            gpus=args.gpus,
            slots_per_gpu=args.slots_per_gpu,
            slots=args.slots,
            detected=detected,
        )
    except slots.SlotError as exc:
        log.error("%s", exc)
        return 2
    worker_id = os.environ["BLOBFORGE_WORKER_ID"].strip()
    work_dir = (args.work_dir or Path(tempfile.gettempdir()) / f"blobforge-worker-{worker_id}").resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        server_url=os.environ["BLOBFORGE_SERVER_URL"].strip(),
        worker_id=worker_id,
        secret=os.environ["BLOBFORGE_WORKER_SECRET"].strip(),
        converter=converter,
        converter_choice=why,
        work_dir=work_dir,
        deadline=Deadline(args.deadline_base, args.deadline_per_page),
        shutdown_grace=args.shutdown_grace,
        windows=args.run_window,
        once=args.once,
        max_jobs=args.max_jobs,
        slots=specs,
        capabilities=slots.capabilities(device, specs, detected),
        chunk_pages=args.chunk_pages,
        max_jobs_per_child=args.max_jobs_per_child,
        child_memory_limit_mb=args.child_memory_limit,
    )
    worker = Worker(settings)
    worker.install_signal_handlers()
    return worker.run()


if __name__ == "__main__":
    raise SystemExit(main())
