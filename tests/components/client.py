"""Helpers for the ``blobforge`` client tests: run the real CLI as a process, and watch its HTTP traffic.

``CountingProxy`` is a plain HTTP forward proxy (clients reach it through ``HTTP_PROXY``):
requests pass through unchanged, so presigned S3 signatures stay valid, and the proxy
records every request that succeeded. With ``hold_after`` it lets that many source
uploads through and holds every later one open, so a test can kill the client while it
is provably half-way.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "te", "upgrade"}


def cli_env(server, token: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BLOBFORGE_") and k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
    }
    env.update(
        {
            "BLOBFORGE_SERVER_URL": server.base_url,
            "BLOBFORGE_API_TOKEN": token,
            "PYTHONUNBUFFERED": "1",
            "XDG_CONFIG_HOME": str(server.data_dir / "no-config"),
        }
    )
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "blobforge_client.cli", *args]


def run_cli(server, token: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``blobforge ARGS`` to completion (text output)."""
    return subprocess.run(
        cli_command(*args), cwd=REPO, env=env or cli_env(server, token), capture_output=True, text=True, timeout=300
    )


def last_json(done: subprocess.CompletedProcess):
    """The JSON document a ``--json`` command printed last."""
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output (rc {done.returncode}):\n{done.stderr}"
    return json.loads(lines[-1])


class CountingProxy:
    def __init__(self, hold_after: int | None = None):
        self.hold_after = hold_after
        self.admitted = 0
        self.succeeded: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                target = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy._must_hold(self.command, target.path):
                    proxy.release.wait(120)
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                try:
                    upstream.request(
                        self.command,
                        target.path + (f"?{target.query}" if target.query else ""),
                        body=body,
                        headers=headers,
                    )
                    response = upstream.getresponse()
                    data = response.read()
                finally:
                    upstream.close()
                if response.status < 400:
                    with proxy.lock:
                        proxy.succeeded.append((self.command, self.path))
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _must_hold(self, method: str, path: str) -> bool:
        if method != "PUT" or "/sources/" not in path or self.hold_after is None:
            return False
        with self.lock:
            if self.admitted < self.hold_after:
                self.admitted += 1
                return False
        return True

    def env(self) -> dict[str, str]:
        return {"HTTP_PROXY": self.url, "http_proxy": self.url}

    def source_puts(self) -> Counter:
        """Successful PUTs of source objects, by object path (multipart parts count per part)."""
        with self.lock:
            return Counter(
                urlsplit(url).path for method, url in self.succeeded if method == "PUT" and "/sources/" in url
            )

    def wait_for_source_puts(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(self.source_puts().values()) < count:
            assert time.monotonic() < deadline, f"only {self.source_puts()} source PUTs within {timeout}s"
            time.sleep(0.05)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
