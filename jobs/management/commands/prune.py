from django.conf import settings

from jobs import queue
from jobs.management.base import BlobForgeCommand


class Command(BlobForgeCommand):
    help = "Delete job history older than BLOBFORGE_EVENT_RETENTION_DAYS for finished jobs (the last event of each job stays)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--days", type=int, default=None, help="retention in days (default: the setting)")

    def handle(self, *args, **options):
        days = options["days"] if options["days"] is not None else settings.EVENT_RETENTION_DAYS
        deleted = queue.prune_events(days)
        self.emit(options, {"deleted": deleted, "days": days}, f"deleted {deleted} event(s) older than {days} days")
