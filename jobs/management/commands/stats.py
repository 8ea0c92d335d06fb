from jobs.api import stats_payload
from jobs.management.base import BlobForgeCommand


class Command(BlobForgeCommand):
    help = "Job counts by status and priority, workers by status."

    def handle(self, *args, **options):
        stats = stats_payload()
        text = "\n".join(
            [
                "jobs:     " + "  ".join(f"{k} {v}" for k, v in stats["by_status"].items()),
                "priority: "
                + "  ".join(f"p{k} {v}" for k, v in stats["by_priority"].items())
                + "  (pending + running)",
                "workers:  " + "  ".join(f"{k} {v}" for k, v in stats["workers"].items()),
            ]
        )
        self.emit(options, stats, text)
