"""The served OpenAPI schema describes both APIs, and its docs page needs no CDN."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_schema_lists_every_worker_and_client_endpoint():
    schema = Client().get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    for expected in [
        "/api/v1/worker/register",
        "/api/v1/worker/claim",
        "/api/v1/worker/jobs/{job_id}/heartbeat",
        "/api/v1/worker/jobs/{job_id}/upload-url",
        "/api/v1/worker/jobs/{job_id}/complete",
        "/api/v1/worker/jobs/{job_id}/fail",
        "/api/v1/worker/jobs/{job_id}/release",
        "/api/v1/worker/unregister",
        "/api/v1/blobs",
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/stats",
        "/api/v1/workers",
    ]:
        assert expected in paths, expected
    schemes = schema["components"]["securitySchemes"]
    assert {"WorkerAuth", "TokenAuth"} <= set(schemes)
    assert Client().get("/api/schema/", follow=True).json()["openapi"].startswith("3.")


def test_docs_page_loads_its_scripts_from_this_server():
    page = Client().get("/api/v1/docs").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, "the docs page has scripts"
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
