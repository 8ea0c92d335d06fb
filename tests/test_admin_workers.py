"""Worker console: status from heartbeats, secrets shown once, and every switch through workers.actions."""

import pytest
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from blobforge_site.credentials import WORKER_SECRET_PREFIX
from jobs.models import Job, JobStatus
from tests.components.browser import create_user, sign_in
from tests.components.console import done_job, running_job
from tests.factories import make_worker
from tests.protocol_client import ProtocolWorker
from workers.models import Worker

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/workers/worker/"


def act(client, action: str, workers, *, confirm: bool = True):
    data = {"action": action, "_selected_action": [str(w.pk) for w in workers], "index": "0", "select_across": "0"}
    if confirm:
        data["confirmed"] = "yes"
    return client.post(CHANGELIST, data, follow=True)


def test_list_shows_status_current_job_and_output(role_client):
    now = timezone.now()
    busy = make_worker("busy", last_seen=now)
    make_worker("draining-one", last_seen=now, draining=True)
    make_worker("gone", last_seen=now - timezone.timedelta(hours=1))
    make_worker("off", enabled=False, last_seen=now)
    done_job(worker=busy)
    job, _ = running_job(worker=busy)
    page = role_client("viewer").get(CHANGELIST).content.decode()
    for status in ("online", "draining", "offline", "disabled"):
        assert f'class="bf-badge bf-{status}"' in page
    assert f"#{job.pk} {job.filename}" in page
    assert '<td class="field-jobs_done">1</td>' in page
    assert '<td class="field-pages_per_hour">2</td>' in page


def test_adding_a_worker_shows_its_secret_once_with_the_environment(role_client, settings):
    client = role_client("admin")
    response = client.post(f"{CHANGELIST}add/", {"name": "gpu-7", "slots": "2"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    worker = Worker.objects.get(name="gpu-7")
    assert f"BLOBFORGE_SERVER_URL={settings.PUBLIC_URL}" in page
    assert "BLOBFORGE_WORKER_ID=gpu-7" in page
    secret = page.split("BLOBFORGE_WORKER_SECRET=", 1)[1].split("<", 1)[0].strip()
    assert secret.startswith(WORKER_SECRET_PREFIX)
    assert secret not in client.get(f"{CHANGELIST}{worker.pk}/change/").content.decode()
    assert secret not in client.get(CHANGELIST).content.decode()
    assert worker.slots == 2


def test_operator_drains_but_may_not_add_disable_or_remove(role_client):
    worker = make_worker("w-op")
    client = role_client("operator")
    act(client, "drain", [worker])
    assert Worker.objects.get(pk=worker.pk).draining
    act(client, "undrain", [worker])
    assert not Worker.objects.get(pk=worker.pk).draining
    for action in ("disable", "remove", "regenerate_secret"):
        act(client, action, [worker])
    assert Worker.objects.get(pk=worker.pk).enabled
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_disable_releases_the_held_job_without_spending_an_attempt(role_client):
    job, _ = running_job()
    client = role_client("admin")
    page = act(client, "disable", [job.worker], confirm=False).content.decode()
    assert "Disable 1 worker?" in page
    assert Worker.objects.get(pk=job.worker_id).enabled, "nothing happens before confirming"
    act(client, "disable", [job.worker])
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
    assert job.events.latest("id").actor == f"user:{client.user.username}"
    assert not Worker.objects.get(pk=job.worker_id).enabled


def test_regenerate_shows_a_new_secret_once(role_client):
    worker = make_worker("w-regen")
    old_hash = worker.secret_hash
    page = act(role_client("admin"), "regenerate_secret", [worker]).content.decode()
    assert "BLOBFORGE_WORKER_ID=w-regen" in page
    assert Worker.objects.get(pk=worker.pk).secret_hash != old_hash


def test_remove_gives_the_job_back(role_client):
    job, _ = running_job()
    act(role_client("admin"), "remove", [job.worker])
    assert not Worker.objects.filter(pk=job.worker_id).exists()
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING


@pytest.mark.browser
@pytest.mark.slow
def test_new_worker_secret_is_shown_once_and_works(server, browser_page):
    create_user(server, "ada", "pw-ada-12345")
    page = browser_page
    sign_in(page, server.base_url, "ada", "pw-ada-12345", next_path="/admin/workers/worker/add/")
    page.fill("input[name=name]", "gpu-new")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".bf-warning")).to_contain_text("Shown once")
    env = page.locator("pre.bf-secret").inner_text()
    assert f"BLOBFORGE_SERVER_URL={server.base_url}" in env
    values = dict(line.split("=", 1) for line in env.strip().splitlines())
    secret = values["BLOBFORGE_WORKER_SECRET"]

    registered = ProtocolWorker(server.base_url, values["BLOBFORGE_WORKER_ID"], secret).register()
    assert registered["worker"] == "gpu-new"

    page.get_by_role("link", name="Done, I have copied it").click()
    page.get_by_role("link", name="gpu-new").click()
    expect(page.locator("#content")).to_contain_text("gpu-new")
    assert secret not in page.content()
    page.go_back()
    try:
        page.go_back()  # to the POST that showed the secret: no-store, so Chromium will not redisplay it
    except PlaywrightError as exc:
        assert "ERR_CACHE_MISS" in str(exc)
    # expect() retries through a navigation that is still settling (content() would refuse mid-navigation).
    expect(page.locator("body")).not_to_contain_text(secret)
