"""``blobforge``: the command line. Exit codes: 0 all good, 1 some items failed (listed), 2 usage or connection error."""

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from blobforge_client import __version__, config, scan
from blobforge_client.http import ApiError, Client, ConnectionProblem
from blobforge_client.hydrate import Hydrate
from blobforge_client.ingest import MULTIPART_THRESHOLD, PART_SIZE, Ingest, IngestAborted, MiB, Options, Summary
from blobforge_client.lookup import job_for

OK, SOME_FAILED, USAGE = 0, 1, 2
STATUSES = ["pending", "running", "done", "dead", "cancelled"]


# --- output ---
def table(rows: Iterable[dict], columns: list[tuple[str, Callable[[dict], Any]]]) -> str:
    """Plain aligned columns; an empty listing prints only the header."""
    cells = [[header for header, _ in columns]]
    cells += [["" if (value := get(row)) is None else str(value) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, default=str) if args.json else text)


def list_problems(problems: list[dict], limit: int = 50) -> list[str]:
    lines = [f"  {p['result']}: {p['path']}: {p['reason']}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  … and {len(problems) - limit} more (--json lists up to 1000)")
    return lines


JOB_COLUMNS = [
    ("ID", lambda j: j["id"]),
    ("STATUS", lambda j: j["status"]),
    ("PRI", lambda j: j["priority"]),
    ("TYPE", lambda j: j["type"]),
    ("ATTEMPTS", lambda j: f"{j['attempts']}/{j.get('max_attempts', '?')}"),
    ("WORKER", lambda j: j.get("worker") or "-"),
    ("PAGES", lambda j: f"{j['pages_done']}/{j['pages_total']}" if j.get("pages_total") else "-"),
    ("FILENAME", lambda j: j["filename"]),
    ("SHA256", lambda j: j["sha256"][:12]),
]


# --- commands ---
def cmd_ingest(client: Client, args: argparse.Namespace) -> int:
    roots = [path.resolve() for path in args.paths]
    if missing := [str(root) for root in roots if not root.exists()]:
        print(f"blobforge: {', '.join(missing)} does not exist", file=sys.stderr)
        return USAGE
    show = not args.no_progress and sys.stderr.isatty()

    def progress(summary: Summary, elapsed: float) -> None:
        rate = summary.bytes / 1e6 / max(elapsed, 1e-9)
        sys.stderr.write(
            f"\r{summary.files} files  {summary.bytes / 1e6:.1f} MB  {rate:.1f} MB/s  uploaded {summary.uploaded} "
        )
        sys.stderr.flush()

    options = Options(
        job_type=args.type,
        priority=args.priority,
        dry_run=args.dry_run,
        parallel=args.parallel,
        multipart_threshold=int(args.multipart_threshold * MiB),
        part_size=int(args.part_size * MiB),
        use_xattrs=not args.no_xattrs,
    )
    run = Ingest(client, options, progress if show else None)
    try:
        summary = run.run(roots)
    except IngestAborted as exc:
        if show:
            sys.stderr.write("\n")
        print(f"blobforge: ingest stopped: {exc}", file=sys.stderr)
        return USAGE
    if show:
        sys.stderr.write("\n")
    s, elapsed = summary, run.elapsed
    lines = [
        f"{s.files} files, {s.bytes / 1e6:.1f} MB in {elapsed:.1f}s ({s.bytes / 1e6 / max(elapsed, 1e-9):.1f} MB/s)"
        f"{' (dry run)' if args.dry_run else ''}; uploaded {s.uploaded} ({s.uploaded_bytes / 1e6:.1f} MB); "
        f"hashed {s.hashed_files}, {s.hash_cache_hits} from the xattr cache",
        f"new {s.new}  duplicate {s.duplicate}  skipped {s.skipped}  failed {s.failed}  jobs queued {s.jobs_created}",
        *list_problems(s.problems),
    ]
    emit(args, s.as_dict() | {"dry_run": args.dry_run, "seconds": round(elapsed, 3)}, "\n".join(lines))
    return SOME_FAILED if s.failed else OK


def _stats_text(stats: dict) -> str:
    return "\n".join(
        [
            "jobs     " + "  ".join(f"{k} {v}" for k, v in stats["by_status"].items()),
            "queued   " + "  ".join(f"p{k} {v}" for k, v in stats["by_priority"].items()),
            "workers  " + "  ".join(f"{k} {v}" for k, v in stats["workers"].items()),
        ]
    )


def cmd_stats(client: Client, args: argparse.Namespace) -> int:
    stats = client.call("GET", "stats")
    emit(args, stats, _stats_text(stats))
    return OK


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    if args.target is None:
        return cmd_stats(client, args)
    if args.target.isdigit() and not Path(args.target).exists():
        try:
            job = client.call("GET", f"jobs/{args.target}")
        except ApiError as exc:
            if exc.is_auth:
                raise
            print(f"blobforge: {exc.detail}", file=sys.stderr)
            return SOME_FAILED
        events = table(
            job["events"],
            [
                ("AT", lambda e: e["at"]),
                ("FROM", lambda e: e["from_status"] or "-"),
                ("TO", lambda e: e["to_status"]),
                ("BY", lambda e: e["actor"]),
                ("MESSAGE", lambda e: e["message"]),
            ],
        )
        lines = [table([job], JOB_COLUMNS)]
        if job.get("last_error"):
            lines.append(f"last error: {job['last_error']}")
        if job.get("output"):
            lines.append(f"output: {job['output']['key']} ({job['output']['size']} bytes)")
        emit(args, job, "\n".join([*lines, "", events]))
        return OK
    root = Path(args.target)
    if not root.exists():
        print(f"blobforge: {root} is neither a job id nor an existing path", file=sys.stderr)
        return USAGE
    hasher = scan.Hasher(use_cache=not args.no_xattrs)
    rows = []
    for path, _ in scan.iter_files([root.resolve()]):
        if scan.sniff_file(path) != "pdf":
            continue
        sha256, _ = hasher.digest(path)
        job = job_for(client, sha256, args.type)
        rows.append({"path": str(path), "sha256": sha256, "job": job})
    emit(
        args,
        rows,
        table(
            rows,
            [
                ("PATH", lambda r: r["path"]),
                ("JOB", lambda r: r["job"]["id"] if r["job"] else "-"),
                ("STATUS", lambda r: r["job"]["status"] if r["job"] else "not ingested"),
                (
                    "PAGES",
                    lambda r: (
                        f"{r['job']['pages_done']}/{r['job']['pages_total']}"
                        if r["job"] and r["job"].get("pages_total")
                        else "-"
                    ),
                ),
            ],
        ),
    )
    return OK


def cmd_jobs(client: Client, args: argparse.Namespace) -> int:
    params = {
        "status": args.status,
        "type": args.type,
        "priority": args.priority,
        "worker": args.worker,
        "search": args.search,
        "limit": min(args.limit, 200),
    }
    page = client.call("GET", "jobs", params={k: v for k, v in params.items() if v is not None})
    jobs = page["results"]
    while page.get("next") and len(jobs) < args.limit:
        page = client.get_url(page["next"])
        jobs += page["results"]
    jobs = jobs[: args.limit]
    emit(args, jobs, table(jobs, JOB_COLUMNS))
    return OK


def _per_job(action: str) -> Callable[[Client, argparse.Namespace], int]:
    def command(client: Client, args: argparse.Namespace) -> int:
        done, problems = [], []
        for job_id in args.ids:
            try:
                done.append(client.call("POST", f"jobs/{job_id}/{action}"))
            except ApiError as exc:
                if exc.is_auth:
                    raise
                problems.append({"path": str(job_id), "result": "failed", "reason": exc.detail})
        lines = [table(done, JOB_COLUMNS)] if done else []
        emit(
            args,
            {"jobs": done, "failed": len(problems), "problems": problems},
            "\n".join(lines + list_problems(problems)),
        )
        return SOME_FAILED if problems else OK

    command.__doc__ = f"{action} jobs by id"
    return command


def cmd_workers(client: Client, args: argparse.Namespace) -> int:
    workers = client.call("GET", "workers")
    emit(
        args,
        workers,
        table(
            workers,
            [
                ("NAME", lambda w: w["name"]),
                ("STATUS", lambda w: w["status"]),
                ("HOST", lambda w: w["hostname"]),
                ("VERSION", lambda w: w["version"]),
                ("RUNNING", lambda w: ",".join(map(str, w["running"])) or "-"),
                ("LAST SEEN", lambda w: w["last_seen"] or "never"),
            ],
        ),
    )
    return OK


def cmd_hydrate(client: Client, args: argparse.Namespace) -> int:
    roots = [path.resolve() for path in args.paths]
    if missing := [str(root) for root in roots if not root.exists()]:
        print(f"blobforge: {', '.join(missing)} does not exist", file=sys.stderr)
        return USAGE
    summary = Hydrate(
        client, job_type=args.type, force=args.force, parallel=args.parallel, use_xattrs=not args.no_xattrs
    ).run(roots)
    s = summary
    lines = [
        f"written {s.written}  skipped {s.skipped} (already there)  not ready {s.not_ready}  failed {s.failed}",
        *list_problems(s.problems),
    ]
    emit(args, s.as_dict(), "\n".join(lines))
    return SOME_FAILED if s.failed else OK


# --- parser ---
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="server URL (default: $BLOBFORGE_SERVER_URL or the config file)")
    common.add_argument("--token", help="API token bf_… (default: $BLOBFORGE_API_TOKEN or the config file)")
    common.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    hashing = argparse.ArgumentParser(add_help=False)
    hashing.add_argument(
        "--no-xattrs", action="store_true", help="neither read nor write the sha256 cache in extended attributes"
    )
    hashing.add_argument("--type", default="pdf", help="job type (default pdf)")

    parser = argparse.ArgumentParser(
        prog="blobforge",
        description="Push documents into BlobForge and bring the Markdown back.",
        epilog=f"Configuration: --server/--token, $BLOBFORGE_SERVER_URL/$BLOBFORGE_API_TOKEN, or {config.config_path()} "
        "(server_url = …, api_token = …). Exit codes: 0 all good, 1 some items failed, 2 usage or connection error.",
    )
    parser.add_argument("--version", action="version", version=f"blobforge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable, help_text: str, parents: list | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common, *(parents or [])])
        sub.set_defaults(handler=handler)
        return sub

    ingest = add(
        "ingest",
        cmd_ingest,
        "Upload every PDF under PATHs the server lacks and queue a job for each "
        "(PDFs recognised by their bytes, Git LFS pointers by their oid, folders become tags).",
        [hashing],
    )
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (recursive)")
    ingest.add_argument(
        "--priority",
        type=int,
        default=3,
        choices=range(1, 6),
        metavar="1-5",
        help="1 critical … 5 background (default 3)",
    )
    ingest.add_argument(
        "--dry-run",
        action="store_true",
        help="count what would happen (a job for the bytes exists = duplicate); upload and queue nothing",
    )
    ingest.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    ingest.add_argument("--parallel", type=int, default=4, metavar="N", help="documents sent at once (default 4)")
    ingest.add_argument(
        "--multipart-threshold",
        type=float,
        default=MULTIPART_THRESHOLD / MiB,
        metavar="MiB",
        help="files this large go up in parallel parts when the server stores in S3 (default 64)",
    )
    ingest.add_argument(
        "--part-size",
        type=float,
        default=PART_SIZE / MiB,
        metavar="MiB",
        help="multipart part size (default 16, min 5)",
    )

    status = add(
        "status",
        cmd_status,
        "Without argument: queue counts. With a job ID: that job and its history. "
        "With a PATH: the job of every PDF under it.",
        [hashing],
    )
    status.add_argument("target", nargs="?", metavar="PATH|ID")

    jobs = add("jobs", cmd_jobs, "List jobs, newest first.")
    jobs.add_argument("--status", choices=STATUSES)
    jobs.add_argument("--type", help="job type")
    jobs.add_argument("--priority", type=int, choices=range(1, 6), metavar="1-5")
    jobs.add_argument("--worker", help="worker name")
    jobs.add_argument("--search", help="sha256 prefix, filename or folder tag")
    jobs.add_argument("--limit", type=int, default=50, help="how many (default 50)")

    for action, help_text in (
        ("retry", "Queue dead or cancelled jobs again (operate scope)."),
        ("cancel", "Cancel pending or running jobs (operate scope)."),
    ):
        sub = add(action, _per_job(action), help_text)
        sub.add_argument("ids", nargs="+", type=int, metavar="ID")

    add("stats", cmd_stats, "Job counts by status and priority, workers by status.")
    add("workers", cmd_workers, "List workers with their status and current jobs.")

    hydrate = add(
        "hydrate",
        cmd_hydrate,
        "Write <stem>.md and <stem>.assets/ beside every PDF under PATHs whose conversion is done.",
        [hashing],
    )
    hydrate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    hydrate.add_argument("--force", action="store_true", help="replace Markdown that is already there")
    hydrate.add_argument("--parallel", type=int, default=4, metavar="N", help="downloads at once (default 4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(args.server, args.token)
        return args.handler(Client(settings.server_url, settings.api_token), args)
    except config.ConfigError as exc:
        print(f"blobforge: {exc}", file=sys.stderr)
    except ApiError as exc:
        print(f"blobforge: the server refused: {exc}", file=sys.stderr)
    except ConnectionProblem as exc:
        print(f"blobforge: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("blobforge: interrupted", file=sys.stderr)
    return USAGE


if __name__ == "__main__":
    sys.exit(main())
