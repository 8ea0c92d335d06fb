"""``manage.py serve [--bind HOST:PORT]``: the one way to run the server in production.

With SQLite and S3 storage configured, the database is backed up continuously by
Litestream (``litestream.yml`` at the repository root):

1. if the database file is missing and a replica exists, restore it from the replica;
2. run migrations;
3. replace this process with ``litestream replicate -exec "daphne …"``, so Litestream
   supervises the server, forwards signals to it and syncs a last time when it stops.

With PostgreSQL (``DATABASE_URL``), local storage or ``BLOBFORGE_LITESTREAM=false`` the
steps are just: migrate, then replace this process with daphne.
"""

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import NoReturn

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from blobforge_site import litestream


def parse_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"--bind must be HOST:PORT such as 0.0.0.0:8000, not {bind!r}")
    return host, int(port)


def forget_lost_database(db: Path) -> None:
    """With the database file gone, its WAL, shared memory and Litestream state describe a
    database that no longer exists: remove them so the restore starts clean."""
    for sidecar in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        sidecar.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(f".{db.name}-litestream"), ignore_errors=True)


class Command(BaseCommand):
    help = "Restore the database from its Litestream replica if missing, migrate, and serve (daphne under Litestream)."
    # System checks may open the database, which would create an empty SQLite file before the restore.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--bind",
            default=os.environ.get("BLOBFORGE_BIND", "127.0.0.1:8000"),
            help="HOST:PORT to listen on (default: BLOBFORGE_BIND or 127.0.0.1:8000)",
        )

    def handle(self, *args, **options) -> None:
        host, port = parse_bind(options["bind"])
        daphne = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "blobforge_site.asgi:application"]
        if not litestream.enabled():
            self._migrate()
            self.stdout.write(f"serving on {host}:{port} (no Litestream: it runs only with SQLite and S3 storage)")
            self._exec(daphne, dict(os.environ))
        db = litestream.database_path()
        if not db.exists():
            forget_lost_database(db)
            self.stdout.write(f"database {db} is missing: restoring it from the replica if one exists")
            restored = litestream.run("restore", "-if-replica-exists", "-if-db-not-exists", str(db))
            if restored.returncode != 0:
                raise CommandError(f"litestream restore failed ({restored.returncode}): {restored.stderr.strip()}")
            self.stdout.write("restored from the replica" if db.exists() else "no replica yet: starting a new database")
        self._migrate()
        self.stdout.write(
            f"serving on {host}:{port}, replicating {db} to s3://{settings.S3_BUCKET}/{litestream.replica_path()}"
        )
        self._exec(litestream.command("replicate", "-exec", shlex.join(daphne)), litestream.environment())

    def _migrate(self) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        connections.close_all()

    def _exec(self, argv: list[str], env: dict[str, str]) -> NoReturn:
        """Become ``argv``: signals to this process (a container's PID 1) reach the server."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvpe(argv[0], argv, env)  # noqa: S606 - argv is built here, no shell involved
