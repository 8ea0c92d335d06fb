"""Moving from SQLite to PostgreSQL with dumpdata/loaddata (the procedure in docs/operations.md):
jobs, their history, workers and tokens come across, and the queue carries on."""

import os
import socket

import pytest

from tests.components.durability import ApiClient
from tests.components.server import ServerProcess, fresh_postgres_database
from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = pytest.mark.slow
POSTGRES_URL = os.environ.get("BLOBFORGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DUMP_EXCLUDES = ["-e", "contenttypes", "-e", "auth.permission", "-e", "sessions"]


@pytest.fixture
def postgres_url():
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    return fresh_postgres_database(POSTGRES_URL)


def test_sqlite_database_moves_to_postgresql(tmp_path, postgres_url, monkeypatch):
    monkeypatch.delenv("BLOBFORGE_TEST_POSTGRES_URL", raising=False)  # the source is SQLite
    old = ServerProcess(tmp_path / "sqlite").start()
    token = old.create_token()
    client = ApiClient(old, token)
    name, secret = old.create_worker("mover")
    worker = ProtocolWorker(old.base_url, name, secret)
    worker.register()
    first = client.submit(tiny_pdf(1), name="first.pdf")
    second = client.submit(tiny_pdf(2), name="second.pdf")
    worker.full_cycle(worker.claim(), tiny_output_zip()).raise_for_status()
    history = {job_id: client.job(job_id) for job_id in (first, second)}
    old.stop()
    dump = tmp_path / "blobforge.json"
    old.manage("dumpdata", "--natural-foreign", "--natural-primary", *DUMP_EXCLUDES, "-o", str(dump))

    # Same data dir (local storage) and secret key; only the database changes.
    new = ServerProcess(tmp_path / "sqlite", {"DATABASE_URL": postgres_url})
    new.migrate()
    new.manage("loaddata", str(dump))
    new.start()
    try:
        client = ApiClient(new, token)
        for job_id, before in history.items():
            after = client.job(job_id)
            assert {k: after[k] for k in ("status", "attempts", "events", "sha256")} == {
                k: before[k] for k in ("status", "attempts", "events", "sha256")
            }
        worker = ProtocolWorker(new.base_url, name, secret)
        claimed = worker.claim()
        assert claimed.id == second
        worker.full_cycle(claimed, tiny_output_zip()).raise_for_status()
        third = client.submit(tiny_pdf(3), name="third.pdf")
        assert third > second  # sequences were reset past the loaded ids
        assert client.job(first)["output"]["url"]
    finally:
        new.stop()
