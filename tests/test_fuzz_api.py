"""Schemathesis fuzzes both APIs through the served OpenAPI schema on a real daphne server.

Every generated request (valid and deliberately invalid bodies, paths and queries) must get
a response that is not a 5xx and that matches the schema: a documented status code, the
documented content type and a body of the documented shape. It runs once with valid
credentials (a worker secret and an admin-scope token, so requests get past auth and reach
the queue) and once with none (so the auth layer itself is fuzzed).

CI runs a few thousand requests; ``BLOBFORGE_FUZZ_NIGHTLY=1`` runs ten times as many.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.protocol_client import tiny_pdf

pytestmark = pytest.mark.slow

NIGHTLY = os.environ.get("BLOBFORGE_FUZZ_NIGHTLY") == "1"
EXAMPLES_PER_OPERATION = 250 if NIGHTLY else 25
# Each operation also gets schemathesis's coverage phase (boundary and negative values), so the
# total is well above operations × examples; this floor proves the run was not silently skipped.
MIN_REQUESTS = 10_000 if NIGHTLY else 1_000
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


@pytest.fixture
def fuzz_target(server_factory, tmp_path):
    """A server with pending jobs, a worker and an admin token; claims answer at once (no long poll)."""
    server = server_factory(BLOBFORGE_RETRY_BASE_SECONDS="0", BLOBFORGE_CLAIM_WAIT_MAX_SECONDS="0")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(20):
        (inbox / f"doc-{n}.pdf").write_bytes(tiny_pdf(n))
    server.manage("ingest", "--no-progress", str(inbox))
    name, secret = server.create_worker("fuzzer")
    return server, name, secret, server.create_token("admin")


def run_schemathesis(server, headers: dict[str, str], report_dir: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``st run`` against the served schema; returns the process and the number of requests made."""
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            server.base_url + "/api/v1/openapi.json",
            *header_args,
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--continue-on-failure",
            "--request-timeout",
            "30",
            "--no-color",
            "--warnings",
            "off",
            "--report",
            "ndjson",
            "--report-dir",
            str(report_dir),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=report_dir.parent,  # schemathesis keeps a crash cache in ./.schemathesis: not in the repository
    )
    return done, count_requests(report_dir)


def count_requests(report_dir: Path) -> int:
    total = 0
    for report in report_dir.glob("*.ndjson"):
        for line in report.read_text().splitlines():
            event = json.loads(line)
            if "ScenarioFinished" in event:
                for case in event["ScenarioFinished"].get("recorder", {}).get("interactions", {}).values():
                    total += case.get("response") is not None
    return total


@pytest.mark.timeout(3600 if NIGHTLY else 600)
@pytest.mark.parametrize("credentials", ["valid", "none"])
def test_no_5xx_and_every_response_matches_the_schema(fuzz_target, tmp_path, credentials):
    server, name, secret, token = fuzz_target
    headers = {}
    if credentials == "valid":
        headers = {"X-Worker-ID": name, "X-Worker-Secret": secret, "Authorization": f"Bearer {token}"}
    done, requests_made = run_schemathesis(server, headers, tmp_path / "report")
    assert done.returncode == 0, f"schemathesis found problems:\n{done.stdout[-15000:]}\n{done.stderr[-3000:]}"
    assert requests_made >= MIN_REQUESTS, f"only {requests_made} requests were made:\n{done.stdout[-3000:]}"
    assert " 500 " not in server.log() and "Traceback" not in server.log(), server.log()
