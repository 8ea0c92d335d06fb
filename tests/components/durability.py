"""Helpers for the durability and metrics tests: ``manage.py serve`` as a process, a
Litestream replica reader, and a client-API caller that submits real bytes over HTTP
(workers are ``tests.protocol_client.ProtocolWorker``)."""

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import requests

from tests.components.server import REPO, ServerProcess
from tests.components.waiting import wait_for  # noqa: F401 - tests import it from here too


class ServeProcess(ServerProcess):
    """The server as production runs it: ``manage.py serve`` (restore, migrate, daphne under Litestream)."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None):
        super().__init__(data_dir, extra_env)
        self.env.pop("DATABASE_URL", None)  # Litestream is about SQLite
        self.db_path = data_dir / "blobforge.sqlite3"

    def start(self, timeout: float = 90) -> "ServeProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "serve", "--bind", f"127.0.0.1:{self.port}"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_healthy(timeout)
        return self

    def replica_copy(self, target: Path) -> sqlite3.Connection | None:
        """Restore the replica as it is in the bucket now into ``target`` (None while there is none)."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        self.manage("litestream", "restore", "-if-replica-exists", "-o", str(target))
        return sqlite3.connect(target) if target.exists() else None


class ApiClient:
    """A client-API caller with a bearer token; declares, uploads and submits real bytes."""

    def __init__(self, server: ServerProcess, token: str):
        self.server = server
        self.session = server.token_session(token)

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.server.base_url}/api/v1/{path}", timeout=30, **kwargs)

    def submit(self, content: bytes, *, name: str, priority: int = 3) -> int:
        sha = hashlib.sha256(content).hexdigest()
        declared = self.call("post", "blobs", json={"sha256": sha, "size": len(content), "filename": name})
        assert declared.status_code == 200, declared.text
        upload = declared.json()["upload"]
        if upload:
            put = requests.put(upload["url"], data=content, headers=upload["headers"], timeout=30)
            assert put.status_code in (200, 201), put.text
        created = self.call("post", "jobs", json={"sha256": sha, "priority": priority, "filename": name})
        assert created.status_code == 201, created.text
        return created.json()["id"]

    def job(self, job_id: int) -> dict:
        response = self.call("get", f"jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()
