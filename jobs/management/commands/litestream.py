"""``manage.py litestream <subcommand> [args]``: Litestream with this server's config and credentials.

For the backup drill and inspection, e.g. ``manage.py litestream ltx`` (what the replica
holds) or ``manage.py litestream restore -o /tmp/copy.sqlite3`` (a copy of the replica
as it is now). The database path is appended for ``restore`` and ``ltx``.
"""

import argparse
import subprocess

from django.core.management.base import BaseCommand, CommandError

from blobforge_site import litestream

TAKES_DATABASE = ("restore", "ltx")


class Command(BaseCommand):
    help = "Run litestream with BlobForge's litestream.yml and S3 settings (restore, ltx, databases …)."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("subcommand", help="a litestream subcommand: restore, ltx, databases …")
        parser.add_argument("litestream_args", nargs=argparse.REMAINDER, help="its arguments")

    def handle(self, *args, **options) -> None:
        if not litestream.enabled():
            raise CommandError("Litestream is not in use here: it needs SQLite, S3 storage and BLOBFORGE_LITESTREAM on")
        extra = list(options["litestream_args"])
        if options["subcommand"] in TAKES_DATABASE:
            extra.append(str(litestream.database_path()))
        done = subprocess.run(
            litestream.command(options["subcommand"], *extra), env=litestream.environment(), check=False
        )
        if done.returncode != 0:
            raise CommandError(f"litestream {options['subcommand']} exited with {done.returncode}")
