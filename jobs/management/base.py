"""Shared plumbing for BlobForge's manage.py commands: ``--json`` output and clear errors."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from jobs.queue import QueueError


def add_job_options(parser) -> None:
    """--priority and --type, as every command that queues jobs spells them."""
    parser.add_argument(
        "--priority",
        type=int,
        default=3,
        choices=range(1, 6),
        metavar="1-5",
        help="1 critical … 5 background (default 3)",
    )
    parser.add_argument("--type", default="pdf", help="job type (default pdf)")


class BlobForgeCommand(BaseCommand):
    """A command whose result can be printed as JSON (``--json``) for scripts."""

    json_option = True

    def add_arguments(self, parser) -> None:
        if self.json_option:
            parser.add_argument("--json", action="store_true", help="print the result as one JSON object")

    def emit(self, options: dict, payload: Any, text: str) -> None:
        if options.get("json"):
            self.stdout.write(json.dumps(payload, cls=DjangoJSONEncoder))
        else:
            self.stdout.write(text)

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except QueueError as exc:
            raise CommandError(exc.message) from exc
