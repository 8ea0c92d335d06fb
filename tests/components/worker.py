"""Real ``blobforge-worker`` processes for tests (``python -m pdf_worker``), plus polling helpers."""

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.components.server import REPO, ServerProcess
from tests.components.waiting import wait_for  # noqa: F401 - tests import it from here too

SLOW_PAGE_ENV = "BLOBFORGE_WORKER_TEST_SLOW_PAGE_SECONDS"


class WorkerProcess:
    def __init__(self, server: ServerProcess, workdir: Path, name: str, args: list[str], env: dict[str, str]):
        self.server, self.name = server, name
        self.worker_id, self.secret = server.create_worker(name)
        self.log_path = workdir / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBFORGE_")}
        self.env |= {
            "BLOBFORGE_SERVER_URL": server.base_url,
            "BLOBFORGE_WORKER_ID": self.worker_id,
            "BLOBFORGE_WORKER_SECRET": self.secret,
            "PYTHONUNBUFFERED": "1",
        } | env
        self.command = [sys.executable, "-m", "pdf_worker", "--work-dir", str(workdir / f"{name}-work"), *args]
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def wait_log(self, text: str, timeout: float = 60) -> None:
        wait_for(lambda: text in self.log(), timeout, f"{text!r} in the log of {self.name}")

    def wait_ready(self, timeout: float = 60) -> "WorkerProcess":
        """Until its converter is loaded and it is claiming."""
        wait_for(lambda: " ready: " in self.log() or self.process.poll() is not None, timeout, f"{self.name} ready")
        assert self.alive, f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill_group(self) -> None:
        """SIGKILL the worker and (for cleanup) anything left in its process group."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture
def worker_factory(tmp_path):
    """Start real workers against a server: ``worker_factory(server, "--converter", "pdfium", env={...})``."""
    started: list[WorkerProcess] = []

    def start(
        server: ServerProcess,
        *args: str,
        name: str | None = None,
        env: dict[str, str] | None = None,
        launch: bool = True,
    ) -> WorkerProcess:
        """With ``launch=False`` only its credentials are created: ``.start().wait_ready()`` it later."""
        worker = WorkerProcess(server, tmp_path, name or f"w-{uuid.uuid4().hex[:6]}", list(args), env or {})
        started.append(worker)
        return worker.start().wait_ready() if launch else worker

    yield start
    for worker in started:
        worker.kill_group()


def job_row(server: ServerProcess, job_id: int) -> dict:
    """The job's row as the server holds it, lease token included (what only the queue sees)."""
    code = (
        "import json\nfrom jobs.models import Job\n"
        f"j = Job.objects.select_related('worker').get(pk={int(job_id)})\n"
        "print(json.dumps({'status': j.status, 'stage': j.stage, 'pages_done': j.pages_done, "
        "'pages_total': j.pages_total, 'attempts': j.attempts, 'lease': j.lease_token, "
        "'worker': j.worker.name if j.worker else None, 'last_error': j.last_error}))\n"
    )
    return json.loads(server.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


def ingest_one(server: ServerProcess, pdf: Path) -> int:
    """Ingest one file and return its job id."""
    server.manage("ingest", str(pdf), "--json")
    code = f"from jobs.models import Job\nprint(Job.objects.filter(blob__paths__path={pdf.name!r}).latest('id').pk)\n"
    return int(server.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


class JobsView:
    """Reads job state through the client API (a read-scoped token)."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self.session = server.token_session(server.create_token("read,submit,operate"))

    def get(self, job_id: int) -> dict:
        response = self.session.get(f"{self.server.base_url}/api/v1/jobs/{job_id}", timeout=10)
        response.raise_for_status()
        return response.json()

    def all(self) -> list[dict]:
        response = self.session.get(f"{self.server.base_url}/api/v1/jobs", params={"limit": 200}, timeout=10)
        response.raise_for_status()
        return response.json()["results"]

    def try_get(self, job_id: int) -> dict | None:
        """None while the server is down."""
        try:
            return self.get(job_id)
        except requests.RequestException:
            return None

    def wait_status(self, job_id: int, statuses: set[str], timeout: float) -> dict:
        return wait_for(
            lambda: (job := self.try_get(job_id)) and job["status"] in statuses and job,
            timeout,
            f"job {job_id} to become {'/'.join(sorted(statuses))}",
        )

    @staticmethod
    def error(job: dict) -> str:
        """The job's last error (the failing event's message carries it)."""
        failures = [
            e["message"]
            for e in job.get("events", [])
            if e["to_status"] in ("pending", "dead") and e["from_status"] == "running"
        ]
        return job.get("last_error") or (failures[-1] if failures else "")

    def output_zip(self, job: dict) -> bytes:
        response = requests.get(job["output"]["url"], timeout=30)
        response.raise_for_status()
        return response.content
