"""Pushes dashboard updates to every open dashboard of this server process.

``JobEvent`` is the outbox: every job change, whichever process made it (a manage.py
command, another server, the API), appends a row. One asyncio task per process polls a
cheap fingerprint — the newest event id, the newest progress write of a running job and
the workers' switches and heartbeats — and when it moves, builds one snapshot, renders
the htmx partials once per role and sends them to this process's consumers.

The group is per process: each process tails the database itself, so with a shared
(Redis) channel layer no browser gets the same update twice.
"""

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync
from channels.layers import get_channel_layer
from django.db import close_old_connections
from django.db.models import Count, Max
from django.template.loader import render_to_string

from jobs.models import Job, JobEvent, JobStatus
from live import snapshot
from workers.models import Worker

log = logging.getLogger(__name__)

POLL_SECONDS = 0.4
MIN_BUILD_SECONDS = 0.8
REFRESH_SECONDS = 5.0  # ages, ETAs and offline workers change with time alone
SAMPLE_SECONDS = 60.0

# One thread (and so one database connection) for all of the broadcaster's queries,
# off the thread that runs Django's sync views.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-broadcaster")


def _in_db_thread(func):
    def wrapped(*args):
        close_old_connections()
        return func(*args)

    return SyncToAsync(wrapped, thread_sensitive=False, executor=_executor)


def fingerprint() -> tuple:
    """Changes whenever anything shown on the dashboard changes (except the passing of time)."""
    newest_event = JobEvent.objects.aggregate(m=Max("id"))["m"]
    running = Job.objects.filter(status=JobStatus.RUNNING).aggregate(n=Count("id"), m=Max("updated_at"))
    workers = tuple(Worker.objects.order_by("id").values_list("id", "enabled", "draining", "last_seen"))
    return newest_event, running["n"], running["m"], hash(workers)


def render(snap: dict) -> dict[str, str]:
    """The update message, once per role: only operators get retry buttons."""
    return {
        variant: render_to_string("live/partials/update.html", {"snap": snap, "can_operate": variant == "operator"})
        for variant in ("viewer", "operator")
    }


def build_and_render() -> dict[str, str]:
    return render(snapshot.fresh())


class Broadcaster:
    def __init__(self) -> None:
        self.group = f"live-{uuid.uuid4().hex[:12]}"
        self.clients = 0
        self.latest: dict[str, str] | None = None
        self.latest_at = 0.0
        self._task: asyncio.Task | None = None

    def attach(self) -> None:
        """A consumer joined; start the loop on this process's event loop the first time."""
        self.clients += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-broadcaster")

    def detach(self) -> None:
        self.clients = max(self.clients - 1, 0)

    async def current(self) -> dict[str, str]:
        """The latest rendered update, for a consumer that just connected."""
        if self.latest is None or time.monotonic() - self.latest_at > MIN_BUILD_SECONDS:
            await self._build()
        return self.latest

    async def _build(self) -> None:
        self.latest = await _in_db_thread(build_and_render)()
        self.latest_at = time.monotonic()

    async def _run(self) -> None:
        last_print, last_build, last_sample = None, 0.0, 0.0
        while True:
            try:
                if self.clients:
                    print_ = await _in_db_thread(fingerprint)()
                    now = time.monotonic()
                    due = print_ != last_print or now - last_build >= REFRESH_SECONDS
                    if due and now - last_build >= MIN_BUILD_SECONDS:
                        await self._build()
                        last_print, last_build = print_, now
                        await get_channel_layer().group_send(self.group, {"type": "live.update", **self.latest})
                if time.monotonic() - last_sample >= SAMPLE_SECONDS:
                    await _in_db_thread(lambda: snapshot.record_sample(snapshot.cached()))()
                    last_sample = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup must not end live updates for good
                log.exception("live broadcaster: update failed; trying again")
                await asyncio.sleep(2)
            await asyncio.sleep(POLL_SECONDS)


broadcaster = Broadcaster()
