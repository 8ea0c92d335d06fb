"""Hypothesis drives ``jobs.queue`` through random sequences of every operation; the invariants always hold.

Three workers (with one, two and three slots) submit, claim, heartbeat, upload and complete (or complete without uploading), fail, release,
cancel, retry, reprioritize, restart, and let leases expire (the expiry is moved into the past,
which is what waiting would do) — with the right lease, a stale one or another worker's. After
every step:

* a job has at most one live lease, and a worker never holds more jobs than its slots;
* attempts never exceed max_attempts, and no job is completed twice;
* a ``done`` job always has its output (key, size, sha256, and the object in storage);
* every status change is in the job's JobEvent chain, which ends in the job's status;
* a call with the live lease from its holder is never refused.
"""

import io
import os
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobs import queue, storage
from jobs.models import Blob, Job, JobEvent, JobStatus
from tests.factories import make_blob, make_worker
from workers import actions
from workers.models import Worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

NIGHTLY = os.environ.get("BLOBFORGE_FUZZ_NIGHTLY") == "1"
OUTPUT = b"PK-output-zip-bytes"
SOMETIMES = st.integers(0, 3).map(lambda n: n == 3)  # a quarter of the calls come from the wrong worker


class QueueMachine(RuleBasedStateMachine):
    """The model remembers every lease token ever handed out, so rules can replay stale ones."""

    @initialize(backlog=st.integers(1, 4))
    def fresh_world(self, backlog):
        JobEvent.objects.all().delete()
        Job.objects.all().delete()
        Blob.objects.all().delete()
        Worker.objects.all().delete()
        self.workers = [make_worker("w0"), make_worker("w1", slots=2), make_worker("w2", slots=3)]
        self.leases: list[tuple[int, int, str]] = []  # (job id, worker index, token) of every claim
        self.jobs: list[int] = []
        for _ in range(backlog):  # something to claim even in runs where hypothesis leaves out `submit`
            self.submit(priority=3, max_attempts=2)

    # --- helpers ---
    def _job(self, data) -> int:
        return data.draw(st.sampled_from(self.jobs), label="job")

    def _lease(self, data) -> tuple[int, int, str]:
        """Mostly a lease the job still runs under (what a healthy worker sends), sometimes any stale one."""
        current = set(Job.objects.filter(status=JobStatus.RUNNING).values_list("lease_token", flat=True))
        live = [lease for lease in self.leases if lease[2] in current]
        choices = st.sampled_from(self.leases)
        return data.draw(st.sampled_from(live) | choices if live else choices, label="lease")

    def _holder(self, job_id: int, worker_index: int, token: str) -> bool:
        """True when this worker holds the job under this token and the lease has not run out."""
        job = Job.objects.get(pk=job_id)
        return (
            job.status == JobStatus.RUNNING
            and job.lease_token == token
            and job.worker_id == self.workers[worker_index].pk
            and job.lease_expires_at > timezone.now()
        )

    # --- submitting and operating ---
    @rule(priority=st.integers(1, 5), max_attempts=st.integers(1, 3))
    def submit(self, priority, max_attempts):
        job, created = queue.submit(make_blob(), priority=priority, max_attempts=max_attempts)
        assert created
        self.jobs.append(job.pk)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def cancel(self, data):
        try:
            queue.cancel(self._job(data), actor="prop")
        except queue.QueueError:
            pass

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def retry(self, data):
        try:
            queue.retry(self._job(data), actor="prop")
        except queue.QueueError:
            pass

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), priority=st.integers(1, 5))
    def reprioritize(self, data, priority):
        try:
            queue.reprioritize(self._job(data), priority, actor="prop")
        except queue.QueueError:
            pass

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def lease_runs_out(self, data):
        Job.objects.filter(pk=self._job(data), status=JobStatus.RUNNING).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )

    @rule()
    def reap(self):
        queue.reap_expired()

    # --- the worker side ---
    @rule(worker=st.integers(0, 2))
    def claim(self, worker):
        try:
            claimed = queue.claim(self.workers[worker], ["pdf"])
        except queue.TransitionRefused:
            held = Job.objects.filter(worker=self.workers[worker], status=JobStatus.RUNNING).count()
            assert held >= self.workers[worker].slots, "claim refused although the worker had a free slot"
            return
        if claimed:
            job, lease = claimed
            self.leases.append((job.pk, worker, lease.token))

    @rule(worker=st.integers(0, 2), restart=st.booleans())
    def worker_comes_back(self, worker, restart):
        """Register after a crash (attempt spent) or unregister on shutdown (attempt kept)."""
        if restart:
            slots = self.workers[worker].slots
            actions.register(self.workers[worker], hostname="h", version="v", capabilities={"slots": slots})
        else:
            actions.unregister(self.workers[worker])

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), as_other=SOMETIMES)
    def heartbeat(self, data, as_other):
        job_id, worker, token = self._lease(data)
        worker = (worker + 1) % 3 if as_other else worker
        rightful = self._holder(job_id, worker, token)
        try:
            queue.heartbeat(self.workers[worker], job_id, token, stage="converting", pages_done=1, pages_total=2)
        except queue.QueueError:
            assert not rightful, "a heartbeat with the live lease from its holder was refused"

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), as_other=SOMETIMES, upload_first=st.booleans())
    def complete(self, data, as_other, upload_first):
        job_id, worker, token = self._lease(data)
        worker = (worker + 1) % 3 if as_other else worker
        job = Job.objects.get(pk=job_id)
        if upload_first:
            storage.backend().save(storage.output_key(job.type, job.blob_id), io.BytesIO(OUTPUT))
        stored = storage.backend().size_of(storage.output_key(job.type, job.blob_id)) == len(OUTPUT)
        rightful = self._holder(job_id, worker, token) and stored
        try:
            queue.complete(
                self.workers[worker], job_id, token, output_size=len(OUTPUT), output_sha256="a" * 64, result={}
            )
        except queue.QueueError:
            assert not rightful, "complete with the live lease and a stored output was refused"

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), as_other=SOMETIMES, retryable=st.booleans())
    def fail(self, data, as_other, retryable):
        job_id, worker, token = self._lease(data)
        worker = (worker + 1) % 3 if as_other else worker
        try:
            queue.fail(self.workers[worker], job_id, token, error="boom", retryable=retryable)
        except queue.QueueError:
            pass

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def release(self, data):
        job_id, worker, token = self._lease(data)
        try:
            queue.release(self.workers[worker], job_id, token)
        except queue.QueueError:
            pass

    # --- what must always hold ---
    @invariant()
    def at_most_one_live_lease_per_job(self):
        for job_id in self.jobs:
            live = {token for j, _, token in self.leases if j == job_id and queue.lease_is_live(j, token)}
            assert len(live) <= 1, f"job {job_id} has {len(live)} live leases"

    @invariant()
    def workers_hold_no_more_than_their_slots(self):
        for worker in self.workers:
            held = Job.objects.filter(worker=worker, status=JobStatus.RUNNING).count()
            assert held <= worker.slots, f"{worker.name} holds {held} jobs with {worker.slots} slot(s)"

    @invariant()
    def job_rows_are_consistent(self):
        for job in Job.objects.all():
            assert 0 <= job.attempts <= job.max_attempts, f"job {job.pk}: {job.attempts}/{job.max_attempts} attempts"
            if job.status == JobStatus.RUNNING:
                assert job.lease_token and job.worker_id and job.lease_expires_at, f"running job {job.pk} has no lease"
            else:
                assert job.lease_expires_at is None, f"{job.status} job {job.pk} still has a lease expiry"
            if job.status == JobStatus.DONE:
                assert job.output_key and job.output_size and job.output_sha256, f"done job {job.pk} has no output"
                assert storage.backend().size_of(job.output_key) == job.output_size

    @invariant()
    def every_status_change_has_its_event(self):
        for job in Job.objects.all():
            events = list(JobEvent.objects.filter(job=job).order_by("id").values_list("from_status", "to_status"))
            assert events and events[0] == ("", JobStatus.PENDING), f"job {job.pk} starts with {events[:1]}"
            for (_, before), (after, _) in zip(events, events[1:], strict=False):
                assert before == after, f"job {job.pk}: event chain breaks between {before} and {after}: {events}"
            assert events[-1][1] == job.status, f"job {job.pk} is {job.status} but its last event says {events[-1]}"
            assert sum(1 for e in events if e[1] == JobStatus.DONE) <= 1, f"job {job.pk} completed twice: {events}"


def test_any_sequence_of_queue_operations_keeps_the_invariants(settings_override):
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=400 if NIGHTLY else 50,
            stateful_step_count=80 if NIGHTLY else 40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.fixture
def settings_override(settings):
    """Retries are due at once, so failed jobs come back into play within one run."""
    settings.RETRY_BASE_SECONDS = 0
    settings.RETRY_MAX_SECONDS = 0
    return settings
