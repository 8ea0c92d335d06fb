from django.core.management.base import CommandError

from jobs import queue
from jobs.management.base import BlobForgeCommand
from jobs.models import Job, JobStatus


class Command(BlobForgeCommand):
    help = (
        "Queue dead or cancelled jobs again: one id, or every dead (or cancelled) job with --all-dead/--all-cancelled."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("ids", nargs="*", type=int, help="job ids")
        parser.add_argument("--all-dead", action="store_true", help="every dead job")
        parser.add_argument("--all-cancelled", action="store_true", help="every cancelled job")
        parser.add_argument(
            "--expect", type=int, help="refuse unless exactly this many jobs match (safety for scripts)"
        )

    def handle(self, *args, **options):
        ids = list(options["ids"])
        scope = [
            s
            for s, on in ((JobStatus.DEAD, options["all_dead"]), (JobStatus.CANCELLED, options["all_cancelled"]))
            if on
        ]
        if scope:
            ids += list(Job.objects.filter(status__in=scope).values_list("id", flat=True))
        if not ids:
            raise CommandError("name job ids, or --all-dead / --all-cancelled")
        if options["expect"] is not None and len(ids) != options["expect"]:
            raise CommandError(f"{len(ids)} jobs match, not the {options['expect']} expected; nothing retried")
        done, refused = [], []
        for job_id in ids:
            try:
                queue.retry(job_id, actor="cli")
                done.append(job_id)
            except queue.QueueError as exc:
                refused.append({"id": job_id, "reason": exc.message})
        text = f"retried {len(done)} job(s)" + "".join(f"\n  refused {r['id']}: {r['reason']}" for r in refused)
        self.emit(options, {"retried": done, "refused": refused}, text)
        if refused:
            raise SystemExit(1)
