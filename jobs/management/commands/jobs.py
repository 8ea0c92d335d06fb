from django.core.management.base import CommandError

from jobs.management.base import BlobForgeCommand
from jobs.models import Job, JobStatus


class Command(BlobForgeCommand):
    help = "List jobs (newest first) or show one with its history."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
        parser.add_argument("id", nargs="?", type=int, help="job id (show)")
        parser.add_argument("--status", choices=JobStatus.values)
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, *args, **options):
        from jobs.api_common import job_summary

        if options["action"] == "show":
            job = Job.objects.select_related("blob", "worker").filter(pk=options["id"]).first()
            if job is None:
                raise CommandError(f"no job {options['id']}")
            events = [
                {"at": e.created_at, "from": e.from_status, "to": e.to_status, "actor": e.actor, "message": e.message}
                for e in job.events.all()
            ]
            lines = [
                f"job {job.pk}: {job.status}  {job.filename}  priority {job.priority}  attempts {job.attempts}/{job.max_attempts}"
            ]
            lines += [
                f"  {e['at']:%Y-%m-%d %H:%M:%S} {e['from'] or '-':>9} → {e['to']:<9} {e['actor']}: {e['message']}"
                for e in events
            ]
            if job.last_error:
                lines.append(f"last error: {job.last_error}")
            return self.emit(options, job_summary(job) | {"events": events}, "\n".join(lines))
        jobs = Job.objects.select_related("blob", "worker").order_by("-id")
        if options["status"]:
            jobs = jobs.filter(status=options["status"])
        rows = [job_summary(job) for job in jobs[: options["limit"]]]
        text = "\n".join(
            f"{r['id']:>7} {r['status']:<9} p{r['priority']} {r['attempts']}/{r['max_attempts']} {r['filename']}"
            for r in rows
        )
        self.emit(options, {"jobs": rows}, text or "no jobs")
