from pathlib import Path

from jobs.export import export
from jobs.management.base import BlobForgeCommand


class Command(BlobForgeCommand):
    help = (
        "Write finished conversions as <name>.md plus <name>.assets/ under DEST, mirroring the paths the PDFs "
        "were ingested from. Stored paths are sanitised: nothing is written outside DEST."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("dest", type=Path, help="folder to write into (created if missing)")
        parser.add_argument("--prefix", default="", help="only documents ingested under this path, e.g. reports/2024")
        parser.add_argument("--tag", default="", help="only documents with this tag (a folder name on their path)")
        parser.add_argument("--type", default="pdf", help="job type (default pdf)")

    def handle(self, *args, **options):
        summary = export(options["dest"], prefix=options["prefix"], tag=options["tag"], job_type=options["type"])
        lines = [f"{summary.documents} documents, {summary.assets} assets written to {options['dest']}"]
        lines += [f"  {p['path']}: {p['reason']}" for p in summary.problems[:50]]
        self.emit(options, summary.as_dict() | {"dest": str(options["dest"].resolve())}, "\n".join(lines))
