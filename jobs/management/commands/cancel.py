from jobs import queue
from jobs.management.base import BlobForgeCommand


class Command(BlobForgeCommand):
    help = "Cancel pending or running jobs (a running job's worker stops at its next heartbeat)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("ids", nargs="+", type=int, help="job ids")

    def handle(self, *args, **options):
        for job_id in options["ids"]:
            job = queue.cancel(job_id, actor="cli")
            self.emit(options, {"id": job.pk, "status": job.status}, f"job {job.pk}: {job.status}")
