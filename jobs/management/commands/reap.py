from jobs import queue
from jobs.management.base import BlobForgeCommand


class Command(BlobForgeCommand):
    help = "Take back running jobs whose lease expired (the server also does this while serving claims)."

    def handle(self, *args, **options):
        count = queue.reap_expired()
        self.emit(options, {"reaped": count}, f"reaped {count} expired lease(s)")
