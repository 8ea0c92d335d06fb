"""Every transition of the job state machine, and every guard that must refuse."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import queue, storage
from jobs.models import Job, JobEvent, JobStatus
from tests.factories import make_blob, make_job, make_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def store_output(job: Job, data: bytes = b"zip-bytes") -> int:
    """Put an output object where complete() looks for it."""
    import io

    return storage.backend().save(storage.output_key(job.type, job.blob_id), io.BytesIO(data))


def claim(worker, types=("pdf",)):
    claimed = queue.claim(worker, list(types))
    assert claimed is not None, "expected a job to be claimable"
    return claimed


def history(job: Job) -> list[tuple[str, str]]:
    return list(JobEvent.objects.filter(job=job).values_list("from_status", "to_status"))


def test_submit_creates_pending_job_with_event():
    job = make_job(priority=2)
    assert job.status == JobStatus.PENDING and job.attempts == 0
    assert history(job) == [("", "pending")]


def test_submit_dedups_per_blob_and_type_unless_forced():
    blob = make_blob()
    first, created = queue.submit(blob)
    again, created_again = queue.submit(blob)
    forced, created_forced = queue.submit(blob, force=True)
    assert created and not created_again and again.pk == first.pk
    assert created_forced and forced.pk != first.pk


@pytest.mark.parametrize("kwargs", [{"priority": 0}, {"priority": 6}, {"job_type": "docx"}])
def test_submit_refuses_bad_priority_or_unknown_type(kwargs):
    with pytest.raises(queue.TransitionRefused):
        queue.submit(make_blob(), **kwargs)


def test_claim_order_is_priority_then_age_then_id():
    low = make_job(priority=5)
    high_old = make_job(priority=1)
    high_new = make_job(priority=1)
    mid = make_job(priority=3)
    workers = [make_worker() for _ in range(4)]
    order = [claim(w)[0].pk for w in workers]
    assert order == [high_old.pk, high_new.pk, mid.pk, low.pk]


def test_aging_lets_a_long_waiting_background_job_go_first(settings):
    old_background = make_job(priority=5)
    # It has waited more than four priority steps: it now outranks a fresh critical job.
    past = timezone.now() - timedelta(seconds=settings.AGING_SECONDS * 4 + 60)
    Job.objects.filter(pk=old_background.pk).update(available_at=past, claim_rank=queue.claim_rank(5, past))
    make_job(priority=1)
    assert claim(make_worker())[0].pk == old_background.pk


def test_claim_leases_and_counts_an_attempt():
    job = make_job()
    worker = make_worker()
    claimed, lease = claim(worker)
    assert claimed.pk == job.pk and claimed.status == JobStatus.RUNNING
    assert claimed.attempts == 1 and claimed.worker_id == worker.pk and claimed.lease_token == lease.token
    assert history(job)[-1] == ("pending", "running")


def test_claim_returns_none_when_nothing_ready_or_wrong_type():
    worker = make_worker()
    assert queue.claim(worker, ["pdf"]) is None
    make_job()
    assert queue.claim(worker, ["epub"]) is None


def test_one_active_lease_per_worker():
    make_job(), make_job()
    worker = make_worker()
    claim(worker)
    with pytest.raises(queue.TransitionRefused, match="already holds"):
        queue.claim(worker, ["pdf"])


def test_draining_worker_gets_nothing_and_disabled_worker_is_refused():
    make_job()
    assert queue.claim(make_worker(draining=True), ["pdf"]) is None
    with pytest.raises(queue.WorkerUnavailable):
        queue.claim(make_worker(enabled=False), ["pdf"])


def test_heartbeat_extends_lease_and_records_progress():
    make_job()
    worker = make_worker()
    job, lease = claim(worker)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    beat, cancel = queue.heartbeat(worker, job.pk, lease.token, stage="converting", pages_done=3, pages_total=10)
    job.refresh_from_db()
    assert not cancel and job.stage == "converting" and (job.pages_done, job.pages_total) == (3, 10)
    assert job.lease_expires_at > timezone.now() + timedelta(seconds=30)


def test_complete_requires_stored_output_then_marks_done():
    make_job()
    worker = make_worker()
    job, lease = claim(worker)
    with pytest.raises(queue.OutputMissing):
        queue.complete(worker, job.pk, lease.token, output_size=9, output_sha256="0" * 64, result={})
    size = store_output(job)
    with pytest.raises(queue.OutputMissing, match="not the"):
        queue.complete(worker, job.pk, lease.token, output_size=size + 1, output_sha256="0" * 64, result={})
    done = queue.complete(worker, job.pk, lease.token, output_size=size, output_sha256="a" * 64, result={"pages": 2})
    assert done.status == JobStatus.DONE and done.lease_token is None and done.output_key
    assert history(job)[-1] == ("running", "done")


def test_complete_twice_is_refused():
    make_job()
    worker = make_worker()
    job, lease = claim(worker)
    size = store_output(job)
    queue.complete(worker, job.pk, lease.token, output_size=size, output_sha256="a" * 64, result={})
    with pytest.raises(queue.LeaseError):
        queue.complete(worker, job.pk, lease.token, output_size=size, output_sha256="a" * 64, result={})


def test_retryable_failure_backs_off_then_dies_after_max_attempts(settings):
    settings.RETRY_BASE_SECONDS = 30
    job = make_job(max_attempts=2)
    worker = make_worker()
    _, lease = claim(worker)
    status, next_at = queue.fail(worker, job.pk, lease.token, error="network blip")
    job.refresh_from_db()
    assert status == JobStatus.PENDING and job.available_at == next_at
    assert timedelta(seconds=14) < next_at - timezone.now() <= timedelta(seconds=31)
    assert queue.claim(worker, ["pdf"]) is None, "a job in backoff must not be claimable"
    Job.objects.filter(pk=job.pk).update(available_at=timezone.now())
    _, lease = claim(worker)
    status, next_at = queue.fail(worker, job.pk, lease.token, error="network blip again")
    job.refresh_from_db()
    assert status == JobStatus.DEAD and next_at is None and job.attempts == 2
    assert job.last_error == "network blip again"


def test_backoff_is_capped_at_the_maximum(settings):
    settings.RETRY_BASE_SECONDS, settings.RETRY_MAX_SECONDS = 30, 3600
    assert all(queue.backoff_seconds(n) <= 3600 for n in range(1, 40))
    assert queue.backoff_seconds(30) >= 1800


def test_non_retryable_failure_is_dead_at_once():
    job = make_job()
    worker = make_worker()
    _, lease = claim(worker)
    status, _ = queue.fail(worker, job.pk, lease.token, error="encrypted: password-protected PDF", retryable=False)
    job.refresh_from_db()
    assert status == JobStatus.DEAD and job.attempts == 1 and "encrypted" in job.last_error


def test_fail_with_another_workers_lease_is_refused():
    job = make_job()
    owner, intruder = make_worker(), make_worker()
    _, lease = claim(owner)
    with pytest.raises(queue.NotYourJob):
        queue.fail(intruder, job.pk, lease.token, error="sabotage")
    with pytest.raises(queue.LeaseError):
        queue.fail(intruder, job.pk, "made-up-lease", error="sabotage")
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.worker_id == owner.pk


def test_release_returns_job_without_spending_an_attempt():
    job = make_job()
    worker = make_worker()
    _, lease = claim(worker)
    queue.release(worker, job.pk, lease.token, reason="shutting down")
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING and job.attempts == 0 and job.lease_token is None
    assert history(job)[-1] == ("running", "pending")


def test_expired_lease_is_reaped_with_an_attempt_spent_and_late_calls_get_409():
    job = make_job()
    slow, other = make_worker(), make_worker()
    _, old_lease = claim(slow)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(queue.LeaseError, match="expired"):
        queue.heartbeat(slow, job.pk, old_lease.token)
    assert queue.reap_expired() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING and job.attempts == 1 and "stopped heartbeating" in job.last_error
    again, new_lease = claim(other)
    assert again.pk == job.pk and again.attempts == 2
    size = store_output(job)
    with pytest.raises(queue.LeaseError):
        queue.complete(slow, job.pk, old_lease.token, output_size=size, output_sha256="a" * 64, result={})
    assert (
        queue.complete(other, job.pk, new_lease.token, output_size=size, output_sha256="a" * 64, result={}).status
        == "done"
    )


def test_expired_lease_on_last_attempt_makes_the_job_dead():
    job = make_job(max_attempts=1)
    worker = make_worker()
    claim(worker)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    queue.reap_expired()
    job.refresh_from_db()
    assert job.status == JobStatus.DEAD


def test_cancel_pending_and_running_then_refuse_done():
    pending = make_job()
    queue.cancel(pending.pk, actor="user:op")
    pending.refresh_from_db()
    assert pending.status == JobStatus.CANCELLED

    running = make_job()
    worker = make_worker()
    _, lease = claim(worker)
    queue.cancel(running.pk, actor="user:op")
    _, cancel = queue.heartbeat(worker, running.pk, lease.token)
    assert cancel, "the worker must learn at its heartbeat that its job was cancelled"
    size = store_output(running)
    with pytest.raises(queue.LeaseError):
        queue.complete(worker, running.pk, lease.token, output_size=size, output_sha256="a" * 64, result={})

    done = make_job()
    worker2 = make_worker()
    _, lease2 = claim(worker2)
    size = store_output(done)
    queue.complete(worker2, done.pk, lease2.token, output_size=size, output_sha256="a" * 64, result={})
    with pytest.raises(queue.TransitionRefused, match="only pending or running"):
        queue.cancel(done.pk, actor="user:op")


def test_retry_dead_and_cancelled_but_not_running_or_done():
    job = make_job(max_attempts=1)
    worker = make_worker()
    _, lease = claim(worker)
    with pytest.raises(queue.TransitionRefused, match="only dead or cancelled"):
        queue.retry(job.pk, actor="user:op")
    queue.fail(worker, job.pk, lease.token, error="boom", retryable=False)
    retried = queue.retry(job.pk, actor="user:op")
    assert retried.status == JobStatus.PENDING and retried.attempts == 0
    cancelled = make_job()
    queue.cancel(cancelled.pk, actor="cli")
    assert queue.retry(cancelled.pk, actor="cli").status == JobStatus.PENDING
    assert history(job)[-1] == ("dead", "pending")


def test_reprioritize_changes_claim_order_and_is_recorded():
    first = make_job(priority=3)
    second = make_job(priority=3)
    queue.reprioritize(second.pk, 1, actor="user:op")
    assert claim(make_worker())[0].pk == second.pk
    assert JobEvent.objects.filter(job=second, message="priority 3 → 1").exists()
    with pytest.raises(queue.TransitionRefused):
        queue.reprioritize(first.pk, 9, actor="user:op")


def test_unknown_job_is_404():
    with pytest.raises(queue.JobNotFound):
        queue.retry(999_999, actor="cli")


def test_register_after_a_crash_gives_back_held_jobs_with_attempt_spent():
    from workers import actions

    job = make_job()
    worker = make_worker()
    claim(worker)
    released = actions.register(worker, hostname="h", version="1", capabilities={})
    job.refresh_from_db()
    assert released == 1 and job.status == JobStatus.PENDING and job.attempts == 1


def test_disable_releases_jobs_without_spending_attempts():
    from workers import actions

    job = make_job()
    worker = make_worker()
    claim(worker)
    actions.set_enabled(worker, False, actor="user:admin")
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING and job.attempts == 0


def test_prune_keeps_active_jobs_history_and_the_last_event_of_finished_ones():
    finished = make_job()
    queue.cancel(finished.pk, actor="cli")
    active = make_job()
    queue.reprioritize(active.pk, 1, actor="cli")
    JobEvent.objects.update(created_at=timezone.now() - timedelta(days=100))
    assert queue.prune_events(90) == 1
    assert list(JobEvent.objects.filter(job=finished).values_list("to_status", flat=True)) == ["cancelled"]
    assert JobEvent.objects.filter(job=active).count() == 2
