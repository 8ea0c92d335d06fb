from jobs import queue
from jobs.management.base import BlobForgeCommand


class Command(BlobForgeCommand):
    help = "Set the priority (1 critical … 5 background) of pending or running jobs."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("priority", type=int, choices=range(1, 6), metavar="PRIORITY")
        parser.add_argument("ids", nargs="+", type=int, help="job ids")

    def handle(self, *args, **options):
        for job_id in options["ids"]:
            job = queue.reprioritize(job_id, options["priority"], actor="cli")
            self.emit(options, {"id": job.pk, "priority": job.priority}, f"job {job.pk}: priority {job.priority}")
