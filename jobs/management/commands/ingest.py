import sys
import time
from pathlib import Path

from django.core.management.base import CommandError

from jobs.ingest import Ingester, iter_files
from jobs.management.base import BlobForgeCommand, add_job_options


class Command(BlobForgeCommand):
    help = (
        "Store and queue every PDF under the given paths (recursive). PDFs are recognised by their bytes; "
        "Git LFS pointers are resolved by their oid; folders become tags."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("paths", nargs="+", type=Path, help="files or folders to ingest")
        add_job_options(parser)
        parser.add_argument("--dry-run", action="store_true", help="count what would happen; store and queue nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")

    def handle(self, *args, **options):
        roots = [p.resolve() for p in options["paths"]]
        for root in roots:
            if not root.exists():
                raise CommandError(f"{root} does not exist")
        ingester = Ingester(job_type=options["type"], priority=options["priority"], dry_run=options["dry_run"])
        show_progress = not options["no_progress"] and sys.stderr.isatty()
        started = last_draw = time.monotonic()
        files = 0
        for path, relative in iter_files(roots):
            ingester.ingest_file(path, relative)
            files += 1
            if show_progress and time.monotonic() - last_draw > 0.2:
                last_draw = time.monotonic()
                self._progress(files, ingester.summary.bytes, last_draw - started)
        ingester.finish()
        elapsed = time.monotonic() - started
        if show_progress:
            self._progress(files, ingester.summary.bytes, elapsed)
            sys.stderr.write("\n")
        summary = ingester.summary.as_dict() | {
            "files": files,
            "seconds": round(elapsed, 3),
            "dry_run": options["dry_run"],
        }
        s = ingester.summary
        lines = [
            f"{files} files, {s.bytes / 1e6:.1f} MB in {elapsed:.1f}s"
            f" ({s.bytes / 1e6 / max(elapsed, 1e-9):.1f} MB/s){' (dry run)' if options['dry_run'] else ''}",
            f"new {s.new}  duplicate {s.duplicate}  skipped {s.skipped}  failed {s.failed}  jobs queued {s.jobs_created}",
        ]
        lines += [f"  {p['result']}: {p['path']}: {p['reason']}" for p in s.problems[:50]]
        self.emit(options, summary, "\n".join(lines))
        if s.failed:
            raise SystemExit(1)

    @staticmethod
    def _progress(files: int, size: int, elapsed: float) -> None:
        sys.stderr.write(f"\r{files} files  {size / 1e6:.1f} MB  {size / 1e6 / max(elapsed, 1e-9):.1f} MB/s ")
        sys.stderr.flush()
