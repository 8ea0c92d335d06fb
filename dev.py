#!/usr/bin/env python3
"""The two commands of BlobForge's Quick start; they install what they need themselves.

    python3 dev.py run    # server + one worker on the embedded default, a sample converted
    python3 dev.py test   # lint, the whole test suite on SQLite, then the PostgreSQL pass

Needs only Python 3.12+ (``.python-version`` selects it under pyenv). Everything else goes
into ``.venv`` beside this file. Standard library only, so it runs before anything is installed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"
SAMPLE = ROOT / "samples" / "welcome.pdf"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], check=True, **kwargs)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project with ``extras`` (skipped when pyproject is unchanged)."""
    if sys.version_info < (3, 12):  # noqa: UP036 - dev.py runs before the venv, on any python3
        sys.exit(f"BlobForge needs Python 3.12 or newer (Django 6.1); this is {sys.version.split()[0]}")
    wanted = f"{extras}:{(ROOT / 'pyproject.toml').stat().st_mtime_ns}"
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        say(f"creating {VENV}")
        run(sys.executable, "-m", "venv", VENV)
    say(f"installing BlobForge [{extras}] into .venv (first run takes a minute or two)")
    env = os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(PYTHON, "-m", "pip", "install", "-q", "--upgrade", "pip", env=env)
    run(PYTHON, "-m", "pip", "install", "-q", "-e", f".[{extras}]", cwd=ROOT, env=env)
    STAMP.write_text(wanted)


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return sock.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError("no free port")


def manage(*args: str, env: dict) -> str:
    return run(PYTHON, ROOT / "manage.py", *args, env=env, capture_output=True, text=True).stdout


def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}; see data/server.log")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own localhost URL
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"the server did not answer {url} within {timeout:.0f}s")


def cmd_run() -> None:
    ensure_venv("worker")
    data = Path(os.environ.get("BLOBFORGE_DATA_DIR", ROOT / "data")).resolve()
    data.mkdir(parents=True, exist_ok=True)
    port = free_port(int(os.environ.get("BLOBFORGE_PORT", "8000")))
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "BLOBFORGE_DATA_DIR": str(data),
        "BLOBFORGE_PUBLIC_URL": os.environ.get("BLOBFORGE_PUBLIC_URL", base),
    }
    say("preparing the database")
    manage("migrate", "--no-input", "-v0", env=env)
    password = None
    if "admin" not in manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; print(list(User.objects.values_list('username', flat=True)))",
        env=env,
    ):
        password = os.urandom(9).hex()
        manage(
            "createsuperuser",
            "--no-input",
            "--username",
            "admin",
            "--email",
            "admin@localhost",
            env=env | {"DJANGO_SUPERUSER_PASSWORD": password},
        )
    worker_list = json.loads(manage("workers", "list", "--json", env=env))["workers"]
    action = "regenerate-secret" if any(w["worker"] == "local-worker" for w in worker_list) else "create"
    secret = json.loads(manage("workers", action, "local-worker", "--json", env=env))["secret"]

    say(f"starting the server on {base}")
    log = (data / "server.log").open("ab")
    server = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "blobforge_site.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    children = [server]

    def stop(*_):
        """The worker first (it unregisters while the server still answers), then the server."""
        for child in reversed(children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(70)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wait_http(base + "/healthz", 60, server)

    say("starting one worker (pdfium converter, CPU)")
    worker_env = env | {
        "BLOBFORGE_SERVER_URL": base,
        "BLOBFORGE_WORKER_ID": "local-worker",
        "BLOBFORGE_WORKER_SECRET": secret,
    }
    worker_log = (data / "worker.log").open("ab")
    children.append(
        subprocess.Popen(
            [PYTHON, "-m", "pdf_worker", "--converter", "auto", "--work-dir", data / "work"],
            cwd=ROOT,
            env=worker_env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    )

    say(f"ingesting the sample {SAMPLE.relative_to(ROOT)}")
    summary = json.loads(manage("ingest", SAMPLE, "--json", "--no-progress", env=env).strip().splitlines()[-1])
    job = json.loads(manage("jobs", "list", "--json", "--limit", "1", env=env))["jobs"][0]
    say(f"ingest: {summary['new']} new, {summary['duplicate']} duplicate; waiting for job {job['id']} to convert")
    deadline = time.monotonic() + 180
    while job["status"] not in ("done", "dead", "cancelled"):
        if time.monotonic() > deadline:
            stop_msg = "the sample was not converted within 3 minutes; see data/worker.log"
            print(stop_msg, file=sys.stderr)
            stop()
        time.sleep(0.5)
        job = json.loads(manage("jobs", "show", str(job["id"]), "--json", env=env))
    if job["status"] != "done":
        print(f"job {job['id']} ended {job['status']}: {job['last_error']}", file=sys.stderr)
        stop()
    export_dir = data / "export"
    manage("export", export_dir, env=env)
    markdown = export_dir / SAMPLE.with_suffix(".md").name
    print()
    print(f"  Converted:  {SAMPLE.name} → {markdown}")
    print(f"  Dashboard:  {base}/")
    print(f"  Admin:      {base}/admin/")
    if password:
        print(f"  Sign in as: admin / {password}   (shown once; change it in the admin)")
    print(f"  API docs:   {base}/api/v1/docs")
    print("\n  The server and the worker keep running; Ctrl-C stops both. Logs: data/server.log, data/worker.log")
    server.wait()
    stop()


def ensure_chromium() -> None:
    """Browser tests drive Debian's Chromium; install it when apt is available and we are root."""
    if Path("/usr/bin/chromium").exists():
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        say("installing Chromium for the browser tests (apt-get)")
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=False,
            stdout=subprocess.DEVNULL,
            env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"},
        )
    if not Path("/usr/bin/chromium").exists():
        say("Chromium is not available: browser tests will be skipped with that reason")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def cmd_test(pytest_args: list[str]) -> None:
    ensure_venv("worker,dev")
    ensure_chromium()
    bin_dir = VENV / "bin"
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    for name in [k for k in env if k.startswith("BLOBFORGE_") or k == "DATABASE_URL"]:
        env.pop(name)
    say("ruff check")
    run(bin_dir / "ruff", "check", ".", cwd=ROOT, env=env)
    say("pytest (SQLite)")
    first = subprocess.run([bin_dir / "pytest", *pytest_args], cwd=ROOT, env=env)
    second_code = 0
    if not pytest_args and postgres_reachable():
        say("pytest -m postgres (PostgreSQL at 127.0.0.1:5432)")
        pg_env = env | {"DATABASE_URL": POSTGRES_URL, "BLOBFORGE_TEST_POSTGRES_URL": POSTGRES_URL}
        second_code = subprocess.run(
            [bin_dir / "pytest", "-m", "postgres", "-p", "no:cacheprovider"], cwd=ROOT, env=pg_env
        ).returncode
    elif not pytest_args:
        say("PostgreSQL is not reachable on 127.0.0.1:5432: skipping the PostgreSQL pass")
    sys.exit(first.returncode or second_code)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test"):
        sys.exit("usage: python3 dev.py run | test [pytest args]")
    if sys.argv[1] == "run":
        cmd_run()
    else:
        cmd_test(sys.argv[2:])


if __name__ == "__main__":
    main()
