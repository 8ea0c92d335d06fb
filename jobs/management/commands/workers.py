from django.conf import settings
from django.core.management.base import CommandError

from jobs.management.base import BlobForgeCommand
from workers import actions
from workers.models import Worker


class Command(BlobForgeCommand):
    help = "Manage conversion workers: create (prints the secret once), list, drain, undrain, enable, disable, regenerate-secret, remove."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "action", choices=["create", "list", "drain", "undrain", "enable", "disable", "regenerate-secret", "remove"]
        )
        parser.add_argument("name", nargs="?", help="worker name (a slug, e.g. gpu-box-1)")
        parser.add_argument("--slots", type=int, default=1, help="jobs it may hold at once (create)")

    def handle(self, *args, **options):
        action, name = options["action"], options["name"]
        if action == "list":
            rows = [
                {
                    "worker": w.name,
                    "status": actions.status(w, settings.WORKER_OFFLINE_SECONDS),
                    "hostname": w.hostname,
                    "version": w.version,
                    "last_seen": w.last_seen,
                }
                for w in Worker.objects.all()
            ]
            text = "\n".join(
                f"{r['worker']:<24} {r['status']:<9} {r['hostname']} {r['last_seen'] or 'never'}" for r in rows
            )
            return self.emit(options, {"workers": rows}, text or "no workers")
        if not name:
            raise CommandError(f"workers {action} needs a worker name")
        if action == "create":
            if Worker.objects.filter(name=name).exists():
                raise CommandError(f"worker {name!r} exists; use regenerate-secret for a new secret")
            try:
                worker, secret = actions.create(name, slots=options["slots"])
            except Exception as exc:  # ValidationError: not a slug
                raise CommandError(f"invalid worker name {name!r}: use letters, digits, - and _") from exc
            return self.emit(
                options,
                {"worker": worker.name, "secret": secret},
                f"worker {worker.name} created. Its secret is shown this once:\n\n"
                f"  BLOBFORGE_WORKER_ID={worker.name}\n  BLOBFORGE_WORKER_SECRET={secret}\n",
            )
        worker = Worker.objects.filter(name=name).first()
        if worker is None:
            raise CommandError(f"no worker named {name!r}")
        actor = "cli"
        if action == "regenerate-secret":
            secret = actions.regenerate_secret(worker, actor=actor)
            return self.emit(
                options,
                {"worker": worker.name, "secret": secret},
                f"new secret for {worker.name} (shown once; the old one no longer works):\n\n"
                f"  BLOBFORGE_WORKER_SECRET={secret}\n",
            )
        if action in ("drain", "undrain"):
            actions.set_draining(worker, action == "drain")
        elif action in ("enable", "disable"):
            actions.set_enabled(worker, action == "enable", actor=actor)
        elif action == "remove":
            actions.remove(worker, actor=actor)
        self.emit(options, {"worker": name, "action": action, "ok": True}, f"{action}: {name}")
