"""Job console: list, search, detail, and the retry/cancel/priority actions through jobs.queue."""

import re

import pytest
from playwright.sync_api import expect

from jobs.models import Job, JobEvent, JobStatus
from tests.components.browser import create_user, sign_in
from tests.components.console import dead_job, done_job, running_job
from tests.factories import make_blob, make_job
from tests.protocol_client import ProtocolWorker, tiny_pdf

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/jobs/job/"


def act(client, action: str, ids, *, confirm: bool, query: str = "", select_across: bool = False, **extra):
    data = {
        "action": action,
        "_selected_action": [str(i) for i in ids],
        "index": "0",
        "select_across": "1" if select_across else "0",
        **extra,
    }
    if confirm:
        data["confirmed"] = "yes"
    return client.post(f"{CHANGELIST}?{query}", data, follow=confirm)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_list_shows_status_progress_and_worker(role_client):
    job, lease = running_job()
    from jobs import queue

    queue.heartbeat(job.worker, job.pk, lease, stage="converting", pages_done=3, pages_total=10)
    page = role_client("viewer").get(CHANGELIST).content.decode()
    assert 'class="bf-badge bf-running"' in page
    assert "converting 3/10" in page
    assert job.worker.name in page and job.filename in page


def test_filters_by_status_priority_and_type(role_client):
    dead = dead_job()
    urgent = make_job(priority=1)
    make_job(priority=4)
    client = role_client("viewer")
    assert list(client.get(CHANGELIST, {"priority": "1"}).context["cl"].result_list) == [urgent]
    assert list(client.get(CHANGELIST, {"status__exact": "dead"}).context["cl"].result_list) == [dead]
    assert client.get(CHANGELIST, {"type": "pdf"}).context["cl"].result_count == 3


def test_search_by_sha256_prefix_filename_and_tag(role_client):
    from jobs import queue

    tagged_blob = make_blob(b"%PDF-1.4 tagged", path="archive/invoices/2024/acme.pdf")
    tagged, _ = queue.submit(tagged_blob)
    other = make_job()
    client = role_client("viewer")

    def found(term: str) -> list[Job]:
        return list(client.get(CHANGELIST, {"q": term}).context["cl"].result_list)

    assert found(tagged.blob_id[:8]) == [tagged]
    assert found("acme") == [tagged]
    assert found("invoices") == [tagged]
    assert found(other.filename) == [other]


def test_detail_has_events_full_error_downloads_and_sanitised_preview(role_client):
    long_error = "Traceback (most recent call last):\n" + "frame\n" * 300 + "ValueError: the end"
    dead = dead_job(error=long_error)
    page = role_client("viewer").get(f"{CHANGELIST}{dead.pk}/change/").content.decode()
    assert "ValueError: the end" in page, "the last error is shown in full"
    assert "pending" in page and "running" in page and "dead" in page  # the event history
    assert re.search(r'href="/storage/sources/[^"]+\?exp=\d+[^"]*sig=', page), "signed source link"

    done = done_job(markdown="# Quarterly report\n\n<script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    page = role_client("viewer").get(f"{CHANGELIST}{done.pk}/change/").content.decode()
    assert "<h1>Quarterly report</h1>" in page
    assert "<td>1</td>" in page
    assert "<script>alert(1)</script>" not in page
    assert re.search(r'href="/storage/outputs/pdf/[^"]+\.zip\?exp=', page), "signed output link"


def test_job_fields_cannot_be_edited_or_added(role_client):
    job = make_job()
    client = role_client("admin")
    page = client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    client.post(f"{CHANGELIST}{job.pk}/change/", {"priority": "1", "status": "done"})
    job.refresh_from_db()
    assert (job.priority, job.status) == (3, JobStatus.PENDING)
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_retry_asks_first_stating_count_and_selection_then_records_events(role_client):
    dead = [dead_job(), dead_job()]
    client = role_client("operator")
    confirm = act(client, "retry_jobs", [j.pk for j in dead], confirm=False)
    page = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Retry 2 jobs?" in page
    assert "2 jobs ticked on the list" in page
    assert all(Job.objects.get(pk=j.pk).status == JobStatus.DEAD for j in dead), "nothing changes before confirming"

    done = act(client, "retry_jobs", [j.pk for j in dead], confirm=True)
    assert "Retried 2 jobs." in messages_of(done)
    for job in dead:
        assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING
        event = JobEvent.objects.filter(job=job).latest("id")
        assert (event.from_status, event.to_status, event.actor) == ("dead", "pending", f"user:{client.user.username}")


def test_select_all_matching_filter_is_described(role_client):
    dead = [dead_job() for _ in range(3)]
    make_job()
    client = role_client("operator")
    # "Select all 3" on the list: the page's ticked ids are sent along, select_across decides.
    ticked = [dead[0].pk]
    page = act(client, "retry_jobs", ticked, confirm=False, query="status__exact=dead", select_across=True)
    assert "Retry 3 jobs?" in page.content.decode()
    assert "all 3 jobs matching status = dead" in page.content.decode()
    act(client, "retry_jobs", ticked, confirm=True, query="status__exact=dead", select_across=True)
    assert Job.objects.filter(status=JobStatus.DEAD).count() == 0


def test_cancel_of_a_done_job_is_refused_with_a_message(role_client):
    done, pending = done_job(), make_job()
    response = act(role_client("operator"), "cancel_jobs", [done.pk, pending.pk], confirm=True)
    assert response.status_code == 200
    text = " ".join(messages_of(response))
    assert "Cancelled 1 job." in text
    assert f"Refused 1: job {done.pk} is done; only pending or running jobs can be cancelled" in text
    assert Job.objects.get(pk=done.pk).status == JobStatus.DONE
    assert Job.objects.get(pk=pending.pk).status == JobStatus.CANCELLED


def test_retry_of_a_running_job_is_refused(role_client):
    job, _ = running_job()
    response = act(role_client("operator"), "retry_jobs", [job.pk], confirm=True)
    assert any("only dead or cancelled jobs can be retried" in m for m in messages_of(response))
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_set_priority_needs_a_value_from_1_to_5(role_client):
    job = make_job(priority=3)
    client = role_client("operator")
    page = act(client, "set_priority", [job.pk], confirm=False).content.decode()
    assert 'name="priority"' in page and "Set priority 1 job?" in page
    assert any(
        "Choose a priority" in m for m in messages_of(act(client, "set_priority", [job.pk], confirm=True, priority="9"))
    )
    response = act(client, "set_priority", [job.pk], confirm=True, priority="1")
    assert "Reprioritized 1 job." in messages_of(response)
    assert Job.objects.get(pk=job.pk).priority == 1
    assert JobEvent.objects.filter(job=job, message="priority 3 → 1").exists()


def test_viewer_gets_no_actions_and_cannot_post_one(role_client):
    dead = dead_job()
    client = role_client("viewer")
    page = client.get(CHANGELIST).content.decode()
    assert "retry_jobs" not in page
    act(client, "retry_jobs", [dead.pk], confirm=True)
    assert Job.objects.get(pk=dead.pk).status == JobStatus.DEAD


def test_user_without_role_is_kept_out(role_client):
    response = role_client(None).get(CHANGELIST, follow=True)
    assert response.status_code == 403
    assert "hold no BlobForge role" in response.content.decode()


def test_anonymous_visitor_is_sent_to_the_sign_in_page(client):
    response = client.get(CHANGELIST, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/?next=")


@pytest.mark.browser
@pytest.mark.slow
def test_operator_retries_a_dead_job_through_the_confirmation_page(server, browser_page, tmp_path, artifact_path):
    create_user(server, "opal", "pw-opal-123", role="operator")
    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(tiny_pdf(99))
    job_id = server.manage_json("submit", str(pdf))["job"]
    worker = ProtocolWorker(server.base_url, *server.create_worker("gpu-9"))
    worker.register()
    worker.fail(worker.claim(), "password-protected PDF", retryable=False).raise_for_status()

    page = browser_page
    sign_in(page, server.base_url, "opal", "pw-opal-123", next_path="/admin/jobs/job/?status__exact=dead")
    page.locator(f'input[name="_selected_action"][value="{job_id}"]').check()
    page.select_option("select[name=action]", "retry_jobs")
    page.get_by_role("button", name="Run").click()
    expect(page.locator(".bf-confirm-count")).to_have_text("Retry 1 job?")
    expect(page.locator(".bf-confirm-selection")).to_contain_text("1 job ticked on the list")
    page.screenshot(path=artifact_path("admin-retry-confirmation.png"), full_page=True)
    page.get_by_role("button", name="Yes, retry 1").click()
    expect(page.locator(".messagelist")).to_contain_text("Retried 1 job.")

    page.goto(f"{server.base_url}/admin/jobs/job/{job_id}/change/")
    expect(page.locator(".field-status_col")).to_contain_text("pending")
    expect(page.locator("#events-group, .inline-group").first).to_contain_text("user:opal")
    page.screenshot(path=artifact_path("admin-job-detail.png"), full_page=True)
