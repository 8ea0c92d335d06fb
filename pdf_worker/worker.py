"""The run loop: register → claim → download → convert (child process) → package → upload → complete.

The worker registers once, announcing ``capabilities.slots``, then runs one slot per
conversion child: each slot is a thread with its own claim loop, its own child (pinned to
its GPU) and one job at a time, so a worker with N slots holds up to N leases. For each
job a heartbeat thread keeps the lease alive through every stage and reports progress
(pages done / total); when it learns the lease is gone or the job was cancelled, the
conversion child is killed within a poll interval and the worker moves on. Network
failures are retried while the lease lasts, so a finished result survives a short
server or storage outage.
"""

import logging
import os
import platform
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from pdf_worker import __version__, chunks, package, schedule
from pdf_worker.client import Client, ProtocolError, Retrier, Unreachable
from pdf_worker.converters import MARKDOWN_NAME
from pdf_worker.isolation import Aborted, ConversionChild, ConversionFailed, Deadline
from pdf_worker.slots import SlotSpec

log = logging.getLogger("pdf_worker")
CLAIM_WAIT = 5.0
"""Seconds one claim long-polls: also how long an idle worker takes to notice SIGTERM."""
CHILD_START_SECONDS = 900.0
COUNT_SECONDS = 60.0
"""Longest the child may take to open a PDF and count its pages."""
JOIN_POLL = 0.5
"""How often the main thread wakes while slots work (signal handlers run on the main thread)."""
LEASE_LOST_STATUSES = {401, 403, 404, 409}
RELEASE_SECONDS = 5.0
STAGE_REPORT_GAP = 1.0
"""Seconds between heartbeats that only report a new stage (the dashboard lags by at most this)."""


@dataclass
class Settings:
    server_url: str
    worker_id: str
    secret: str
    converter: str
    converter_choice: str
    work_dir: Path
    deadline: Deadline
    shutdown_grace: float
    windows: list[schedule.RunWindow] = field(default_factory=list)
    once: bool = False
    max_jobs: int = 0
    slots: list[SlotSpec] = field(default_factory=lambda: [SlotSpec(0, None)])
    capabilities: dict = field(default_factory=dict)
    """Hardware facts for the registration (device, GPUs); ``slots`` is added from ``slots``."""
    chunk_pages: int = 0
    """Documents over this many pages are converted in checkpointed page ranges (0: never)."""
    max_jobs_per_child: int = 0
    child_memory_limit_mb: float = 0


class JobRun:
    """One claimed job, shared between the main thread and the heartbeat thread."""

    def __init__(self, claim: dict, worker: "Worker"):
        self.job = claim["job"]
        self.id: int = self.job["id"]
        self.lease: str = claim["lease"]["token"]
        self.lease_seconds: float = float(claim["lease"]["seconds"])
        self.lease_until = time.monotonic() + self.lease_seconds
        self.worker = worker
        self.stage = "claimed"
        self.pages_done: int | None = None
        self.pages_total: int | None = None
        self.checkpoint: chunks.Checkpoint | None = None
        self.lost: str | None = None
        self.stage_changed = threading.Event()

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self.stage_changed.set()
        log.info("job %s: %s", self.id, stage)

    def abort_reason(self) -> str | None:
        """Why this job must stop now, or None."""
        if self.lost:
            return self.lost
        if self.worker.grace_over():
            return f"worker shutting down: --shutdown-grace of {self.worker.settings.shutdown_grace:g}s exceeded"
        return None

    def keep_trying(self) -> bool:
        """Retry network failures while the lease (as last extended) lasts and nothing asks us to stop."""
        return self.abort_reason() is None and time.monotonic() < self.lease_until


class Heartbeat(threading.Thread):
    def __init__(self, client: Client, run: JobRun, interval: float):
        super().__init__(name=f"heartbeat-{run.id}", daemon=True)
        self.client, self.job, self.interval = client, run, interval
        self.stopped = threading.Event()
        self.failing = False

    def run(self) -> None:
        run = self.job
        last_report = time.monotonic()  # the claim itself set the lease and the stage
        while not self.stopped.is_set():
            if run.stage_changed.wait(self.interval):
                # Stage changes closer together than STAGE_REPORT_GAP are reported as one,
                # so a job shorter than that costs no heartbeat at all (its lease outlives it).
                if self.stopped.wait(max(last_report + STAGE_REPORT_GAP - time.monotonic(), 0)):
                    return
            run.stage_changed.clear()
            if self.stopped.is_set():
                return
            body = {"lease": run.lease, "stage": run.stage}
            if run.pages_total is not None:
                body |= {"pages_done": run.pages_done or 0, "pages_total": run.pages_total}
            sent = time.monotonic()
            try:
                answer = self.client.call(f"jobs/{run.id}/heartbeat", body, timeout=max(self.interval, 2))
            except (ProtocolError, Unreachable) as exc:
                if self.stopped.is_set():  # the job ended while this heartbeat was under way
                    return
                if isinstance(exc, Unreachable):
                    if not self.failing:
                        log.warning("job %s: heartbeat failed (%s); will keep trying", run.id, exc)
                    self.failing = True
                    continue
                if exc.status in LEASE_LOST_STATUSES:
                    run.lost = f"lease lost: {exc.detail}"
                    log.warning("job %s: %s", run.id, run.lost)
                    return
                log.warning("job %s: heartbeat refused: %s", run.id, exc)
                continue
            if self.failing:
                log.info("job %s: heartbeat answered again", run.id)
                self.failing = False
            if answer and answer.get("cancel"):
                run.lost = "job cancelled by an operator"
                log.warning("job %s: %s", run.id, run.lost)
                return
            run.lease_until = sent + run.lease_seconds
            last_report = sent

    def stop(self) -> None:
        self.stopped.set()
        self.job.stage_changed.set()


class Worker:
    """The process: one registration, signals, and the slots that do the work."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client = Client(settings.server_url, settings.worker_id, settings.secret)
        self.slots = [Slot(self, spec) for spec in settings.slots]
        self.stop_requested = threading.Event()
        self.grace_deadline: float | None = None
        self.heartbeat_interval = 15.0
        self.claim_wait = CLAIM_WAIT
        self.idle_backoff_max = 5.0
        self.jobs_done = 0
        self._claims = 0
        self._lock = threading.Lock()

    # --- signals -------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if self.stop_requested.is_set():
            log.warning("second %s: exiting at once", signal.Signals(signum).name)
            for slot in self.slots:
                slot.child.kill()
            os._exit(128 + signum)
        self.grace_deadline = time.monotonic() + self.settings.shutdown_grace
        self.stop_requested.set()
        log.info(
            "%s: no new jobs; the current one has %gs to finish (--shutdown-grace), then its lease is released",
            signal.Signals(signum).name,
            self.settings.shutdown_grace,
        )

    def grace_over(self) -> bool:
        return self.grace_deadline is not None and time.monotonic() > self.grace_deadline

    def sleep(self, seconds: float) -> None:
        """Sleep that a stop request cuts short."""
        self.stop_requested.wait(seconds)

    # --- job accounting across slots ---------------------------------------------------
    def reserve_claim(self) -> bool:
        """May a slot claim one more job under --max-jobs? (Reserved before asking, so slots never overshoot.)"""
        with self._lock:
            if self.settings.max_jobs and self._claims >= self.settings.max_jobs:
                return False
            self._claims += 1
            return True

    def unreserve_claim(self) -> None:
        with self._lock:
            self._claims -= 1

    def job_finished(self) -> None:
        with self._lock:
            self.jobs_done += 1

    # --- lifecycle ---------------------------------------------------------------------
    def run(self) -> int:
        """Work until stopped; returns the process exit status."""
        try:
            self._register()
        except ProtocolError as exc:
            log.error("the server refused this worker (%s); check BLOBFORGE_WORKER_ID and BLOBFORGE_WORKER_SECRET", exc)
            return 2
        except Unreachable:
            log.info("stopped before the server answered")
            return 0
        for stale in self.settings.work_dir.glob("job-*"):  # left behind by a crash or kill -9
            shutil.rmtree(stale, ignore_errors=True)
        chunks.sweep(self.settings.work_dir)  # finished page ranges stay: a retry resumes from them
        try:
            failures = self._start_children()
            if failures:
                for failure in failures:
                    log.error("%s", failure)
                return 2
            threads = [threading.Thread(target=slot.loop, name=str(slot.spec), daemon=True) for slot in self.slots]
            for thread in threads:
                thread.start()
            _join(threads)
        finally:
            for slot in self.slots:
                slot.child.close()
            self._unregister()
        log.info("stopped after %d job(s)", self.jobs_done)
        return 0

    def _start_children(self) -> list[ConversionFailed]:
        """Start every slot's child at once (each loads its models); returns the failures."""
        failures: list[ConversionFailed] = []

        def start(slot: "Slot") -> None:
            try:
                slot.start_child()
            except ConversionFailed as exc:
                failures.append(exc)

        starters = [threading.Thread(target=start, args=(slot,), daemon=True) for slot in self.slots]
        for thread in starters:
            thread.start()
        _join(starters)
        return failures

    def _register(self) -> None:
        """Register once for all slots: the server treats a registration as a restart and
        takes back every job this worker held, so slots never register on their own."""
        capabilities = {"job_types": ["pdf"], "converter": self.settings.converter}
        capabilities |= self.settings.capabilities | {"slots": len(self.slots)}
        body = {"hostname": platform.node()[:255], "version": __version__, "capabilities": capabilities}
        answer = self.client.call("register", body, keep_trying=lambda: not self.stop_requested.is_set())
        self.heartbeat_interval = float(answer["heartbeat_interval"])
        self.claim_wait = min(CLAIM_WAIT, float(answer["poll"]["wait_max"]))
        self.idle_backoff_max = float(answer["poll"]["idle_backoff_max"])
        if answer.get("released"):
            log.warning("the server took back %d job(s) this worker held before it restarted", answer["released"])
        log.info(
            "registered as %s with %s: %d slot(s) (%s), heartbeat every %gs",
            answer["worker"],
            self.settings.server_url,
            len(self.slots),
            ", ".join(map(str, (slot.spec for slot in self.slots))),
            self.heartbeat_interval,
        )

    def _unregister(self) -> None:
        deadline = time.monotonic() + RELEASE_SECONDS
        try:
            self.client.call("unregister", keep_trying=lambda: time.monotonic() < deadline, timeout=RELEASE_SECONDS)
        except (ProtocolError, Unreachable) as exc:
            log.warning("could not unregister: %s", exc)


class Slot:
    """One conversion child and the claim loop that feeds it, one job at a time (a thread of its own)."""

    def __init__(self, worker: Worker, spec: SlotSpec):
        self.worker, self.spec = worker, spec
        self.settings = worker.settings
        self.client = Client(self.settings.server_url, self.settings.worker_id, self.settings.secret)
        self.child = ConversionChild(self.settings.converter, env=spec.env)
        self.child_jobs = 0
        self.next_claim: dict | None = None
        """The job that came back with the last ``complete`` (one round trip instead of two)."""

    def loop(self) -> None:
        worker = self.worker
        # A job that came back with the last complete is taken (or released) even if a stop
        # was asked for meanwhile.
        while not worker.stop_requested.is_set() or self.next_claim is not None:
            claim = self._take_chained_claim() or self._claim()
            if claim is None:
                return
            run = JobRun(claim, worker)
            if worker.stop_requested.is_set():
                self._release(run, "worker shutting down before starting the job")
                return
            self.process(run)
            worker.job_finished()
            self._recycle_if_due()
            if self.settings.once:
                return

    def _take_chained_claim(self) -> dict | None:
        """The job that came back with the last ``complete``, if any and if the child can take it."""
        claim, self.next_claim = self.next_claim, None
        if claim is not None and not self.child.alive and not self._restart_child():
            self._release(JobRun(claim, self.worker), "the conversion process could not be restarted")
            self.worker.unreserve_claim()
            return None
        return claim

    def _claim(self) -> dict | None:
        """Wait for a run window and a job; None when this slot should stop."""
        worker, settings = self.worker, self.settings
        idle = 0
        window_logged = False
        while not worker.stop_requested.is_set():
            now = datetime.now()
            if not schedule.is_open(settings.windows, now):
                if not window_logged:
                    log.info("outside the run windows (%s): not claiming", ", ".join(map(str, settings.windows)))
                    window_logged = True
                worker.sleep(min(schedule.seconds_until_open(settings.windows, now), 30))
                continue
            window_logged = False
            if not self.child.alive and not self._restart_child():
                continue
            if not worker.reserve_claim():
                return None
            asked = time.monotonic()
            try:
                claim = self.client.call(
                    "claim",
                    {"job_types": ["pdf"], "wait": worker.claim_wait},
                    keep_trying=lambda: not worker.stop_requested.is_set(),
                    timeout=worker.claim_wait + 30,
                )
            except Unreachable:
                worker.unreserve_claim()
                return None
            except ProtocolError as exc:
                worker.unreserve_claim()
                log.error("%s: claim refused: %s", self.spec, exc)
                worker.sleep(30)
                continue
            if claim is not None:
                return claim
            worker.unreserve_claim()
            if settings.once:
                return None
            # The server long-polls; back off only when it answered at once (long-polling off).
            if time.monotonic() - asked < worker.claim_wait / 2:
                idle += 1
                worker.sleep(min(worker.idle_backoff_max, 0.25 * 2**idle))
        return None

    def _chain_claim(self) -> dict | None:
        """What to send with ``complete`` so the next job comes back in the same round trip.

        None when this slot should not take another job at once: ``--once``, a stop,
        a closed run window, ``--max-jobs`` reached, or a child due for recycling (a
        leased job must not wait while a fresh child loads its models).
        """
        worker = self.worker
        if (
            self.settings.once
            or worker.stop_requested.is_set()
            or not schedule.is_open(self.settings.windows, datetime.now())
            or self._recycle_reason()
            or not worker.reserve_claim()
        ):
            return None
        return {"job_types": ["pdf"]}

    def start_child(self) -> None:
        ready = self.child.start(CHILD_START_SECONDS)
        self.child_jobs = 0
        log.info(
            "%s: converter %s ready: %s on %s (pid %s)",
            self.spec,
            ready["converter"],
            ready["version"],
            ready["device"],
            ready.get("pid"),
        )

    def _restart_child(self) -> bool:
        try:
            self.start_child()
            return True
        except ConversionFailed as exc:
            log.error("%s: %s; retrying in 30s", self.spec, exc)
            self.worker.sleep(30)
            return False

    def _recycle_if_due(self) -> None:
        """End the child after --max-jobs-per-child jobs or past --child-memory-limit; the loop starts a fresh one."""
        if why := self._recycle_reason():
            log.info("%s: recycling the conversion process: %s", self.spec, why)
            self.child.close()

    def _recycle_reason(self) -> str | None:
        if not self.child.alive:
            return None
        if self.settings.max_jobs_per_child and self.child_jobs >= self.settings.max_jobs_per_child:
            return f"it converted {self.child_jobs} job(s) (--max-jobs-per-child {self.settings.max_jobs_per_child})"
        if self.settings.child_memory_limit_mb:
            rss = self.child.rss_mb()
            if rss > self.settings.child_memory_limit_mb:
                return f"it uses {rss:.0f} MiB (--child-memory-limit {self.settings.child_memory_limit_mb:g} MiB)"
        return None

    # --- one job -----------------------------------------------------------------------
    def process(self, run: JobRun) -> None:
        source = run.job["source"]
        log.info(
            "job %s: claimed %s (%s bytes, attempt %s of %s) on %s",
            run.id,
            source["filename"],
            source["size"],
            run.job["attempt"],
            run.job["max_attempts"],
            self.spec,
        )
        job_dir = self.settings.work_dir / f"job-{run.id}"
        shutil.rmtree(job_dir, ignore_errors=True)
        heartbeat = Heartbeat(self.client, run, self.worker.heartbeat_interval)
        heartbeat.start()
        try:
            (job_dir / "out").mkdir(parents=True)
            self._convert_and_deliver(run, job_dir)
        except Aborted as exc:
            self._after_abort(run, str(exc))
        except Unreachable as exc:
            reason = run.abort_reason()
            if reason:
                self._after_abort(run, reason)
            else:
                log.error("job %s: gave up, the lease ran out while retrying: %s", run.id, exc)
        except ConversionFailed as exc:
            if not exc.retryable and run.checkpoint:
                run.checkpoint.remove()  # the document itself is at fault: no attempt will resume
            self._fail(run, exc.message, retryable=exc.retryable)
        except OSError as exc:
            # The work dir is full or unwritable: this attempt fails, the worker lives on.
            where = f" ({exc.filename})" if exc.filename else ""
            self._fail(run, f"worker work dir problem: {exc.strerror or exc}{where}", retryable=True)
        except ProtocolError as exc:
            if exc.status in LEASE_LOST_STATUSES:
                log.warning("job %s: the server no longer accepts our lease: %s", run.id, exc.detail)
            else:
                self._fail(run, f"server refused: {exc}", retryable=True)
        finally:
            heartbeat.stop()
            shutil.rmtree(job_dir, ignore_errors=True)

    def _convert_and_deliver(self, run: JobRun, job_dir: Path) -> None:
        source = run.job["source"]
        seconds: dict[str, float] = {}
        pdf = job_dir / "source.pdf"

        run.set_stage("downloading")
        started = time.monotonic()
        try:
            self.client.download(
                source["url"],
                pdf,
                sha256=source["sha256"],
                size=source["size"],
                keep_trying=run.keep_trying,
                should_stop=run.abort_reason,
            )
        except ValueError as exc:
            raise ConversionFailed(str(exc)) from exc
        self._check(run)
        seconds["download"] = time.monotonic() - started

        run.set_stage("converting")
        started = time.monotonic()
        self.child_jobs += 1
        converted = self._convert(run, pdf, job_dir / "out")
        seconds["convert"] = time.monotonic() - started

        run.set_stage("packaging")
        started = time.monotonic()
        info = self.child.info
        meta = {
            "sha256": source["sha256"],
            "filename": source["filename"],
            "pages": converted["pages"],
            "page_count": converted["page_count"],
            "converter": {
                "name": info["converter"],
                "version": info["version"],
                "choice": self.settings.converter_choice,
            },
            "device": info["device"],
            "slot": {
                "index": self.spec.index,
                "gpu": self.spec.gpu,
                "cuda_visible_devices": info.get("cuda_visible_devices"),
                "child_pid": info.get("pid"),
                "child_job": self.child_jobs,
            },
            "worker": {"id": self.settings.worker_id, "hostname": platform.node(), "version": __version__},
            "job": {"id": run.id, "attempt": run.job["attempt"]},
            "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for key in ("chunk_pages", "page_ranges", "resumed_pages", "metadata"):
            if converted.get(key) is not None:
                meta[key] = converted[key]
        meta["seconds"] = {stage: round(value, 3) for stage, value in seconds.items()}
        zip_path = job_dir / "output.zip"
        size, sha256 = package.build(job_dir / "out", zip_path, meta)
        seconds["package"] = time.monotonic() - started
        self._check(run)

        run.set_stage("uploading")
        started = time.monotonic()
        self._upload(run, zip_path, size)
        seconds["upload"] = time.monotonic() - started

        run.set_stage("completing")
        result = {
            "pages": converted["pages"],
            "converter": info["converter"],
            "converter_version": info["version"],
            "device": info["device"],
            "slot": self.spec.index,
            "gpu": self.spec.gpu,
            "resumed_pages": converted.get("resumed_pages", 0),
            "seconds": {stage: round(value, 3) for stage, value in seconds.items()},
            "markdown": MARKDOWN_NAME,
        }
        body = {"lease": run.lease, "output": {"size": size, "sha256": sha256}, "result": result}
        if chained := self._chain_claim():
            body["claim"] = chained
        try:
            answer = self.client.call(f"jobs/{run.id}/complete", body, keep_trying=run.keep_trying)
        except BaseException:
            if chained:
                self.worker.unreserve_claim()
            raise
        self.next_claim = (answer or {}).get("next") if chained else None
        if chained and self.next_claim is None:
            self.worker.unreserve_claim()
        if run.checkpoint:
            run.checkpoint.remove()
        log.info(
            "job %s: done (%s pages by %s in %.1fs)", run.id, converted["pages"], info["converter"], seconds["convert"]
        )

    def _convert(self, run: JobRun, pdf: Path, out_dir: Path) -> dict:
        """Convert in the child: whole, or in checkpointed page ranges when the document is long."""
        deadline, chunk = self.settings.deadline, self.settings.chunk_pages
        count = self.child.page_count(pdf, max(deadline.base, COUNT_SECONDS), should_stop=run.abort_reason)
        run.pages_done, run.pages_total = 0, count

        if not chunk or count <= chunk:

            def on_progress(done: int, total: int) -> None:
                run.pages_done = done

            done = self.child.convert(pdf, out_dir, deadline, should_stop=run.abort_reason, on_progress=on_progress)
            return {"pages": done["pages"], "page_count": count, "metadata": done.get("metadata") or None}

        source = run.job["source"]
        run.checkpoint = checkpoint = chunks.Checkpoint(
            self.settings.work_dir, source["sha256"], self.settings.converter, chunk
        )
        finished = checkpoint.finished(count)
        resumed = sum(len(item.pages) for item in finished)
        if finished:
            log.info(
                "job %s: resuming from its checkpoint: pages 1-%d of %d were converted by an earlier attempt",
                run.id,
                resumed,
                count,
            )
        run.pages_done = resumed
        for pages in chunks.plan(count, chunk)[len(finished) :]:

            def on_progress(done: int, total: int, first: int = pages.start) -> None:
                run.pages_done = first + done

            started = time.monotonic()
            partial = checkpoint.begin(pages)
            done = self.child.convert(
                pdf, partial, deadline, should_stop=run.abort_reason, on_progress=on_progress, pages=pages
            )
            record = {
                "page_count": count,
                "job": run.id,
                "attempt": run.job["attempt"],
                "seconds": round(time.monotonic() - started, 3),
                "metadata": done.get("metadata") or {},
            }
            finished.append(checkpoint.finish(partial, pages, record))
            log.info(
                "job %s: pages %d-%d of %d converted (checkpoint saved)", run.id, pages.start + 1, pages.stop, count
            )
        metadata = chunks.merge(finished, out_dir)
        return {
            "pages": count,
            "page_count": count,
            "chunk_pages": chunk,
            "page_ranges": [
                {
                    "pages": f"{item.pages.start + 1}-{item.pages.stop}",
                    "attempt": item.record["attempt"],
                    "seconds": item.record["seconds"],
                }
                for item in finished
            ],
            "resumed_pages": resumed,
            "metadata": metadata or None,
        }

    @staticmethod
    def _check(run: JobRun) -> None:
        reason = run.abort_reason()
        if reason:
            raise Aborted(reason)

    def _upload(self, run: JobRun, zip_path: Path, size: int) -> None:
        """Ask for a fresh upload URL and PUT the zip, retrying both while the lease lasts."""
        retrier = Retrier(f"job {run.id}: upload", run.keep_trying)
        while True:
            self._check(run)
            signed = self.client.call(
                f"jobs/{run.id}/upload-url", {"lease": run.lease, "size": size}, keep_trying=run.keep_trying
            )
            try:
                self.client.upload(signed, zip_path)
            except requests.RequestException as exc:
                retrier.failed(str(exc)[:200])
                continue
            retrier.succeeded()
            return

    def _fail(self, run: JobRun, error: str, *, retryable: bool) -> None:
        log.warning("job %s: failed (%s): %s", run.id, "will retry" if retryable else "not retryable", error)
        try:
            answer = self.client.call(
                f"jobs/{run.id}/fail",
                {"lease": run.lease, "error": error[:100_000], "retryable": retryable},
                keep_trying=run.keep_trying,
            )
            log.info("job %s: now %s", run.id, answer["status"])
        except (ProtocolError, Unreachable) as exc:
            log.warning("job %s: could not record the failure (%s); the lease will expire instead", run.id, exc)

    def _after_abort(self, run: JobRun, reason: str) -> None:
        log.warning("job %s: stopped: %s", run.id, reason)
        if not run.lost:  # our lease is still good: give the job back without spending an attempt
            self._release(run, reason)

    def _release(self, run: JobRun, reason: str) -> None:
        deadline = time.monotonic() + RELEASE_SECONDS
        try:
            self.client.call(
                f"jobs/{run.id}/release",
                {"lease": run.lease, "reason": reason[:2000]},
                keep_trying=lambda: time.monotonic() < deadline,
                timeout=RELEASE_SECONDS,
            )
            log.info("job %s: released (no attempt spent)", run.id)
        except (ProtocolError, Unreachable) as exc:
            log.warning("job %s: could not release (%s); its lease will expire", run.id, exc)


def _join(threads: list[threading.Thread]) -> None:
    """Wait for the threads in short joins, so the main thread keeps handling signals."""
    for thread in threads:
        while thread.is_alive():
            thread.join(JOIN_POLL)
