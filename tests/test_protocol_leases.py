"""Leases over real HTTP: heartbeats keep a job, silence loses it, late calls get 409."""

import threading

import pytest

from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def short_lease_server(server_factory):
    return server_factory(
        BLOBFORGE_LEASE_SECONDS="4", BLOBFORGE_HEARTBEAT_SECONDS="1", BLOBFORGE_RETRY_BASE_SECONDS="0"
    )


def submit(server, n: int = 0) -> None:
    path = server.data_dir / f"doc{n}.pdf"
    path.write_bytes(tiny_pdf(n))
    server.manage("submit", str(path))


def test_silent_worker_loses_its_job_and_its_late_complete_gets_409(short_lease_server):
    server = short_lease_server
    submit(server)
    silent = ProtocolWorker(server.base_url, *server.create_worker("silent"))
    other = ProtocolWorker(server.base_url, *server.create_worker("other"))
    lost = silent.claim()
    assert lost is not None
    # The other worker long-polls; it is handed the job once the silent worker's lease runs out.
    taken = other.claim(wait=15)
    assert taken is not None and taken.id == lost.id
    assert taken.body["job"]["attempt"] == 2, "the lost attempt counts"

    output = tiny_output_zip()
    late = silent.complete(lost, output)
    assert late.status_code == 409 and "lease" in late.json()["detail"]
    assert silent.heartbeat(lost).status_code == 409
    assert other.full_cycle(taken, output).status_code == 200


def test_heartbeats_keep_the_lease_beyond_its_length(short_lease_server):
    server = short_lease_server
    submit(server)
    busy = ProtocolWorker(server.base_url, *server.create_worker("busy"))
    rival = ProtocolWorker(server.base_url, *server.create_worker("rival"))
    job = busy.claim()
    stop = threading.Event()

    def keep_alive():
        while not stop.wait(1):
            assert busy.heartbeat(job, stage="converting").status_code == 200

    beating = threading.Thread(target=keep_alive)
    beating.start()
    try:
        assert rival.claim(wait=8) is None, "a heartbeating worker keeps its job past the 4 s lease"
    finally:
        stop.set()
        beating.join()
    assert busy.full_cycle(job, tiny_output_zip()).status_code == 200


def test_claim_long_poll_delivers_a_job_submitted_while_waiting(server):
    waiter = ProtocolWorker(server.base_url, *server.create_worker("waiter"))
    waiter.register()
    result = {}
    polling = threading.Thread(target=lambda: result.update(job=waiter.claim(wait=20)))
    polling.start()
    submit(server)
    polling.join(30)
    assert result["job"] is not None


def test_cancelled_job_tells_its_worker_at_the_next_heartbeat(server):
    submit(server)
    worker = ProtocolWorker(server.base_url, *server.create_worker("runner"))
    job = worker.claim()
    server.manage("cancel", str(job.id))
    beat = worker.heartbeat(job, stage="converting")
    assert beat.status_code == 200 and beat.json()["cancel"] is True
    assert worker.complete(job, tiny_output_zip()).status_code == 409


def test_draining_worker_finishes_its_job_and_gets_no_new_one(server):
    submit(server, 1)
    submit(server, 2)
    worker = ProtocolWorker(server.base_url, *server.create_worker("drainee"))
    job = worker.claim()
    server.manage("workers", "drain", "drainee")
    assert worker.full_cycle(job, tiny_output_zip()).status_code == 200
    assert worker.claim() is None
    server.manage("workers", "undrain", "drainee")
    assert worker.claim() is not None


def test_disabled_worker_secret_stops_working_at_once_and_its_job_goes_back(server):
    submit(server)
    worker = ProtocolWorker(server.base_url, *server.create_worker("doomed"))
    job = worker.claim()
    server.manage("workers", "disable", "doomed")
    assert worker.heartbeat(job).status_code == 403
    stand_in = ProtocolWorker(server.base_url, *server.create_worker("stand-in"))
    again = stand_in.claim()
    assert again.id == job.id and again.body["job"]["attempt"] == 1, "disabling spends no attempt"
