"""Live updates: time from a job change to every one of 50 dashboard websockets having it.

A superuser signs in through ``/accounts/login/`` (requests); 50 websocket clients
(``websockets`` package) connect to ``/ws/live/`` with that session cookie and the server
URL as Origin. Each trial is one worker-protocol call over HTTP: a claim (the
dashboard's running count goes 0 → 1) or a release (1 → 0). The clock starts just
before the request is sent; a client has the change when a message shows the new
running count. Reported: per trial the time until the last client had it (p50/p95 over
trials), and the time per client and trial (p50/p95).

Ceiling: the same 50 websocket clients on ``bench/minimal_asgi.py`` under daphne, where
``POST /broadcast`` pushes the message to every socket at once (no polling, no rendering).
"""

import asyncio
import json
import re
import time

from _common import (
    Connection,
    bench_server,
    parse_args,
    percentile,
    prepare,
    report,
)
from job_cycles import MinimalAsgi
from websockets.asyncio.client import connect

from tests.identity_people import PASSWORD, local_sign_in

RUNNING = re.compile(r'data-status="running"><span class="n">(\d+)<')


class Clients:
    """``count`` websockets; ``arrivals[i]`` holds (time, message) for client i."""

    def __init__(self, url: str, origin: str, count: int, cookie: str = ""):
        self.url, self.origin, self.count = url, origin, count
        self.headers = {"Cookie": cookie} if cookie else {}
        self.arrivals: list[list[tuple[float, str]]] = [[] for _ in range(count)]
        self.tasks: list[asyncio.Task] = []
        self.connected = 0

    async def _client(self, index: int) -> None:
        async with connect(
            self.url, origin=self.origin, additional_headers=self.headers, max_size=None, open_timeout=60
        ) as socket:
            self.connected += 1
            async for message in socket:
                self.arrivals[index].append((time.perf_counter(), message))

    async def __aenter__(self) -> "Clients":
        self.tasks = [asyncio.create_task(self._client(i)) for i in range(self.count)]
        deadline = time.monotonic() + 60
        while self.connected < self.count:
            failed = [t for t in self.tasks if t.done()]
            if failed:
                failed[0].result()  # raises why
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.connected} of {self.count} websockets connected")
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def wait_all(self, since: float, matches, timeout: float = 30) -> list[float]:
        """Seconds from ``since`` until each client got a message that ``matches``."""
        deadline = time.monotonic() + timeout
        while True:
            got = [
                next((t - since for t, m in arrivals if t >= since and matches(m)), None) for arrivals in self.arrivals
            ]
            if all(value is not None for value in got):
                return got
            if time.monotonic() > deadline:
                missing = sum(value is None for value in got)
                raise TimeoutError(f"{missing} of {self.count} clients did not get the change within {timeout}s")
            await asyncio.sleep(0.005)


def running_is(count: int):
    def matches(message: str) -> bool:
        found = RUNNING.search(message)
        return found is not None and int(found.group(1)) == count

    return matches


async def blobforge_trials(
    server, cookie: str, worker: tuple[str, str], clients: int, trials: int
) -> list[list[float]]:
    ws_url = server.base_url.replace("http://", "ws://") + "/ws/live/"
    api = Connection(server.base_url, {"X-Worker-ID": worker[0], "X-Worker-Secret": worker[1]})
    results = []
    async with Clients(ws_url, server.base_url, clients, cookie) as sockets:
        await sockets.wait_all(0, running_is(0))  # everyone has the first snapshot
        for _ in range(trials):
            await asyncio.sleep(1.0)  # let the broadcaster settle, so each trial starts alike
            since = time.perf_counter()
            status, body = await api.request("POST", "/api/v1/worker/claim", json_body={"job_types": ["pdf"]})
            assert status == 200, f"claim answered {status}: {body[:200]!r}"
            claimed = json.loads(body)
            results.append(await sockets.wait_all(since, running_is(1)))
            await asyncio.sleep(1.0)
            since = time.perf_counter()
            status, body = await api.request(
                "POST",
                f"/api/v1/worker/jobs/{claimed['job']['id']}/release",
                json_body={"lease": claimed["lease"]["token"], "reason": "bench"},
            )
            assert status == 200, f"release answered {status}: {body[:200]!r}"
            results.append(await sockets.wait_all(since, running_is(0)))
    await api.close()
    return results


async def ceiling_trials(base_url: str, clients: int, trials: int) -> list[list[float]]:
    results = []
    http = Connection(base_url)
    async with Clients(base_url.replace("http://", "ws://") + "/live", base_url, clients) as sockets:
        for n in range(trials * 2):
            await asyncio.sleep(0.2)
            since = time.perf_counter()
            marker = f"change {n}"
            await http.request("POST", "/broadcast", body=marker.encode())
            results.append(await sockets.wait_all(since, lambda m, marker=marker: m == marker))
    await http.close()
    return results


def summary(results: list[list[float]]) -> list[float]:
    last = [max(trial) for trial in results]
    each = [value for trial in results for value in trial]
    return [1000 * percentile(v, p) for v, p in ((last, 50), (last, 95), (each, 50), (each, 95))]


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    clients, trials = (5, 1) if args.tiny else (50, 15)
    with bench_server() as server:
        workers, _ = prepare(
            server,
            workers=1,
            jobs=1,
            code="from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_superuser('bench', 'bench@example.test', {PASSWORD!r})\n",
        )
        cookie = "sessionid=" + local_sign_in(server, "bench").cookies["sessionid"]
        worker = workers[0]
        results = asyncio.run(blobforge_trials(server, cookie, worker, clients, trials))
    with MinimalAsgi() as bare_url:
        ceiling = asyncio.run(ceiling_trials(bare_url, clients, trials))
    rows = [
        ["BlobForge /ws/live/", clients, len(results), *summary(results)],
        ["bare ASGI push (ceiling)", clients, len(ceiling), *summary(ceiling)],
    ]
    notes = [
        "a trial is one claim (running 0 → 1) or one release (1 → 0) over the worker protocol; "
        "the clock starts before the request is sent"
    ]
    report(
        args,
        "Live update latency",
        [
            "stack",
            "clients",
            "changes",
            "all clients p50 ms",
            "all clients p95 ms",
            "per client p50 ms",
            "per client p95 ms",
        ],
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
