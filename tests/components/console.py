"""In-process helpers for console tests: signed-in clients by role, and jobs in each state."""

import hashlib
import io
import itertools
import zipfile

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from jobs import queue, storage
from jobs.models import Job
from tests.factories import make_job, make_worker

_names = itertools.count()


@pytest.fixture
def role_client(db):
    """``role_client("viewer" | "operator" | "admin" | None)``: a test client signed in as a new user of that role.

    ``admin`` is a group member, not a superuser, so role checks (not is_superuser) are what is tested.
    """

    def make(role: str | None) -> Client:
        user = User.objects.create_user(f"{role or 'norole'}{next(_names)}", password="x")
        if role:
            user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


def output_zip(markdown: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("content.md", markdown)
        archive.writestr("meta.json", "{}")
    return buffer.getvalue()


def running_job(worker=None, **kwargs) -> tuple[Job, str]:
    """A job claimed by ``worker`` (a new one by default); returns it with its lease token.

    The claim takes the best pending job: make the jobs that should stay pending afterwards.
    """
    job = make_job(**kwargs)
    worker = worker or make_worker()
    claimed, lease = queue.claim(worker, ["pdf"])
    assert claimed.pk == job.pk
    return claimed, lease.token


def dead_job(error: str = "converter crashed", **kwargs) -> Job:
    job, lease = running_job(**kwargs)
    queue.fail(job.worker, job.pk, lease, error=error, retryable=False)
    return Job.objects.get(pk=job.pk)


def done_job(markdown: str = "# Title\n\nBody text.", **kwargs) -> Job:
    job, lease = running_job(**kwargs)
    data = output_zip(markdown)
    storage.backend().save(storage.output_key(job.type, job.blob_id), io.BytesIO(data))
    queue.complete(
        job.worker,
        job.pk,
        lease,
        output_size=len(data),
        output_sha256=hashlib.sha256(data).hexdigest(),
        result={"pages": 2},
    )
    return Job.objects.get(pk=job.pk)
