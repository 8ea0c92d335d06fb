from pathlib import Path

from django.core.management.base import CommandError

from jobs import ingest
from jobs.management.base import BlobForgeCommand, add_job_options


class Command(BlobForgeCommand):
    help = "Store one PDF and queue its conversion."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("file", type=Path, help="the PDF to convert")
        add_job_options(parser)
        parser.add_argument("--force", action="store_true", help="queue a new job even if one exists")

    def handle(self, *args, **options):
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        try:
            job, created = ingest.submit_file(
                path, job_type=options["type"], priority=options["priority"], force=options["force"], actor="cli"
            )
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        verb = "queued" if created else "already queued as"
        self.emit(
            options,
            {"job": job.pk, "created": created, "status": job.status, "sha256": job.blob_id},
            f"{verb} job {job.pk} ({job.status}) for {path.name}",
        )
