"""The real BlobForge server for tests: ``daphne blobforge_site.asgi:application`` in a child process.

``server_factory`` starts as many as a test needs; each has its own data dir (SQLite
database and local storage), or its own fresh PostgreSQL database when the test run
has ``DATABASE_URL`` set (``dev.py test`` does a PostgreSQL pass that way).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.components.ports import free_port

REPO = Path(__file__).resolve().parents[2]
_sqlite_template: Path | None = None


def fresh_postgres_database(base_url: str) -> str:
    """Create an empty database beside ``base_url``'s and return its URL."""
    import psycopg

    name = f"bf_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


class ServerProcess:
    """One daphne process plus ``manage.py`` access to the same database and storage."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBFORGE_")}
        self.env.update(
            {
                "BLOBFORGE_DATA_DIR": str(data_dir),
                "BLOBFORGE_SECRET_KEY": "test-secret-key-" + "x" * 40,
                "BLOBFORGE_PUBLIC_URL": self.base_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        test_db = os.environ.get("BLOBFORGE_TEST_POSTGRES_URL")
        if test_db:
            self.env["DATABASE_URL"] = fresh_postgres_database(test_db)
        else:
            self.env.pop("DATABASE_URL", None)
        self.env.update(extra_env or {})
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir / "server.log"

    # --- lifecycle ---
    def start(self, timeout: float = 60) -> "ServerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.migrate()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "blobforge_site.asgi:application",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_healthy(timeout)
        return self

    def migrate(self) -> None:
        """Migrate; a fresh SQLite database is copied from a once-migrated template (much faster)."""
        database = Path(self.env["BLOBFORGE_DATA_DIR"]) / "blobforge.sqlite3"  # a test may share one
        if "DATABASE_URL" in self.env or database.exists():
            self.manage("migrate", "--no-input", "-v0")
            return
        global _sqlite_template
        if _sqlite_template is None:
            template_dir = Path(tempfile.mkdtemp(prefix="bf-template-"))
            env = self.env | {"BLOBFORGE_DATA_DIR": str(template_dir)}
            subprocess.run(
                [sys.executable, str(REPO / "manage.py"), "migrate", "--no-input", "-v0"],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
            _sqlite_template = template_dir / "blobforge.sqlite3"
        shutil.copyfile(_sqlite_template, database)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server did not answer /healthz within {timeout}s:\n{self.log()}")

    def stop(self, *, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def drop_own_database(self) -> None:
        """Drop the PostgreSQL database this server was given (SQLite files go with tmp_path)."""
        url, base = self.env.get("DATABASE_URL", ""), os.environ.get("BLOBFORGE_TEST_POSTGRES_URL")
        if not base or not url or url.rsplit("/", 1)[-1] == base.rsplit("/", 1)[-1]:
            return
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}" WITH (FORCE)')

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    # --- manage.py against the same database and storage ---
    def manage(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def shell(self, code: str) -> str:
        """Run Python in ``manage.py shell`` against this server's database; returns its stdout."""
        return self.manage("shell", "--verbosity", "0", "-c", code).stdout

    def manage_json(self, *args: str) -> dict:
        out = self.manage(*args, "--json").stdout.strip().splitlines()
        return json.loads(out[-1])

    def create_worker(self, name: str) -> tuple[str, str]:
        created = self.manage_json("workers", "create", name)
        return created["worker"], created["secret"]

    def create_token(self, scopes: str = "read,submit,operate", name: str | None = None) -> str:
        return self.manage_json("tokens", "create", "--name", name or f"t-{uuid.uuid4().hex[:6]}", "--scopes", scopes)[
            "token"
        ]

    def worker_session(self, name: str, secret: str) -> requests.Session:
        session = requests.Session()
        session.headers.update({"X-Worker-ID": name, "X-Worker-Secret": secret})
        return session

    def token_session(self, token: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        return session


@pytest.fixture
def server_factory(tmp_path):
    """Start servers: ``server_factory(**env)``; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(name: str = "server", **env: str) -> ServerProcess:
        server = ServerProcess(tmp_path / name, env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(kill=True)
    for server in started:
        server.drop_own_database()


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """A server on the embedded default (SQLite or the run's PostgreSQL, local storage)."""
    return server_factory(BLOBFORGE_RETRY_BASE_SECONDS="0")


@pytest.fixture
def s3_server(server_factory, seaweedfs) -> ServerProcess:
    """A server whose storage is the SeaweedFS S3 server, under a prefix of its own."""
    return server_factory(BLOBFORGE_RETRY_BASE_SECONDS="0", **seaweedfs.env(prefix=f"t{uuid.uuid4().hex[:8]}"))
