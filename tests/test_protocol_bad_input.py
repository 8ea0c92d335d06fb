"""Bad input on every endpoint gets a 4xx with a message, never a 500, and changes nothing."""

import json

import pytest
from django.test import Client

from accounts.tokens import create_token
from jobs.models import Job, JobEvent
from tests.factories import make_blob, make_job
from workers import actions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

NOT_JSON = ["{bad", "", "[", "\x00\x01", '{"a": }', "nul"]
WRONG_SHAPES = ["[]", "42", '"text"', "null", '{"lease": 5}', '{"job_types": "pdf"}', '{"unknown_field": 1}']


@pytest.fixture
def creds():
    worker, secret = actions.create("alpha")
    _, token = create_token("all", ["admin"])
    return {"HTTP_X_WORKER_ID": "alpha", "HTTP_X_WORKER_SECRET": secret}, {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post(path: str, body: str, headers: dict):
    return Client().post(path, body, content_type="application/json", **headers)


def assert_clear_4xx(response, *expected: int):
    assert response.status_code in (expected or (400, 404, 409, 422)), (response.status_code, response.content)
    assert response.json()["detail"], "a 4xx must say what is wrong"


WORKER_PATHS = [
    "register",
    "claim",
    "jobs/{id}/heartbeat",
    "jobs/{id}/upload-url",
    "jobs/{id}/complete",
    "jobs/{id}/fail",
    "jobs/{id}/release",
]
CLIENT_POSTS = ["blobs", "jobs", "jobs/{id}/priority"]


@pytest.mark.parametrize("path", WORKER_PATHS)
@pytest.mark.parametrize("body", NOT_JSON + WRONG_SHAPES)
def test_worker_endpoints_reject_malformed_bodies(creds, path, body):
    job = make_job()
    before = (Job.objects.get(pk=job.pk).status, JobEvent.objects.count())
    response = post("/api/v1/worker/" + path.format(id=job.pk), body, creds[0])
    assert_clear_4xx(response, 400, 422)
    assert (Job.objects.get(pk=job.pk).status, JobEvent.objects.count()) == before


@pytest.mark.parametrize("path", CLIENT_POSTS)
@pytest.mark.parametrize("body", NOT_JSON + WRONG_SHAPES)
def test_client_endpoints_reject_malformed_bodies(creds, path, body):
    job = make_job()
    response = post("/api/v1/" + path.format(id=job.pk), body, creds[1])
    assert_clear_4xx(response, 400, 422)


@pytest.mark.parametrize(
    "body",
    [
        {"sha256": "z" * 64, "size": 10},
        {"sha256": "A" * 64, "size": 10},
        {"sha256": "a" * 63, "size": 10},
        {"sha256": "a" * 64, "size": -1},
        {"sha256": "a" * 64, "size": "ten"},
        {"sha256": "a" * 64, "size": 10, "path": "x" * 5000},
    ],
)
def test_declare_blob_validates_fields(creds, body):
    assert_clear_4xx(post("/api/v1/blobs", json.dumps(body), creds[1]), 422)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "docx"},
        {"priority": 0},
        {"priority": 6},
        {"priority": "high"},
        {"force": "maybe"},
    ],
)
def test_create_job_refuses_unknown_type_and_bad_priority(creds, body):
    blob = make_blob()
    response = post("/api/v1/jobs", json.dumps({"sha256": blob.sha256} | body), creds[1])
    assert_clear_4xx(response, 409, 422)
    assert not Job.objects.filter(blob=blob).exists()


def test_create_job_for_unknown_blob_is_404(creds):
    assert_clear_4xx(post("/api/v1/jobs", json.dumps({"sha256": "b" * 64}), creds[1]), 404)


@pytest.mark.parametrize("priority", [0, 6, -1, 1000])
def test_priority_out_of_range_on_reprioritize(creds, priority):
    job = make_job()
    assert_clear_4xx(post(f"/api/v1/jobs/{job.pk}/priority", json.dumps({"priority": priority}), creds[1]), 422)


@pytest.mark.parametrize("query", ["status=bogus", "priority=9", "limit=100000", "cursor=-5", "limit=abc"])
def test_job_list_rejects_bad_filters(creds, query):
    response = Client().get(f"/api/v1/jobs?{query}", **creds[1])
    assert_clear_4xx(response, 422)


def test_unknown_job_and_worker_ids_are_404(creds):
    assert_clear_4xx(Client().get("/api/v1/jobs/987654", **creds[1]), 404)
    assert_clear_4xx(post("/api/v1/jobs/987654/retry", "{}", creds[1]), 404)
    assert_clear_4xx(post("/api/v1/workers/ghost/drain", "{}", creds[1]), 404)
    body = json.dumps({"lease": "x", "stage": "converting"})
    assert_clear_4xx(post("/api/v1/worker/jobs/987654/heartbeat", body, creds[0]), 404)


@pytest.mark.parametrize("field,value", [("pages_done", -1), ("pages_total", "many"), ("stage", "x" * 100)])
def test_heartbeat_with_wrong_types(creds, field, value):
    job = make_job()
    response = post(f"/api/v1/worker/jobs/{job.pk}/heartbeat", json.dumps({"lease": "x", field: value}), creds[0])
    assert_clear_4xx(response, 422)


def test_job_search_by_sha256_prefix_filename_and_tag(creds):
    job = make_job()
    headers = creds[1]
    for term in (job.blob_id[:8], job.blob_id[:8].upper(), job.filename[:6], "docs"):
        response = Client().get(f"/api/v1/jobs?search={term}", **headers)
        assert response.status_code == 200, response.content
        assert [r["id"] for r in response.json()["results"]] == [job.pk], term


def test_job_detail_carries_worker_progress_and_error(creds):
    from jobs import queue
    from workers.models import Worker

    job = make_job()
    worker = Worker.objects.get(name="alpha")
    _, lease = queue.claim(worker, ["pdf"])
    queue.heartbeat(worker, job.pk, lease.token, stage="converting", pages_done=2, pages_total=5)
    body = Client().get(f"/api/v1/jobs/{job.pk}", **creds[1]).json()
    assert (body["worker"], body["stage"], body["pages_done"], body["pages_total"]) == ("alpha", "converting", 2, 5)
    queue.fail(worker, job.pk, lease.token, error="boom: page 3", retryable=False)
    listed = Client().get("/api/v1/jobs?status=dead", **creds[1]).json()["results"][0]
    assert listed["last_error"] == "boom: page 3" and listed["max_attempts"] == 3


def test_nul_characters_are_refused_not_stored(creds):
    blob = make_blob()
    response = post("/api/v1/jobs", json.dumps({"sha256": blob.sha256, "filename": "a\x00b.pdf"}), creds[1])
    assert_clear_4xx(response, 422)
    assert "NUL" in response.json()["detail"]
    assert_clear_4xx(Client().get("/api/v1/jobs?search=a%00b", **creds[1]), 422)
    assert_clear_4xx(post("/api/v1/workers/a%00b/drain", "{}", creds[1]), 404)
