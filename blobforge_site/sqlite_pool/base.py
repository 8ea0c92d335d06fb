"""SQLite whose connections outlive the request that opened them.

Under ASGI each request runs its sync code in a thread of its own, and Django opens a
database connection per thread and closes it when the request ends. For SQLite that is
a file open, some thirty SQL functions registered and four PRAGMAs every time: about a
tenth of the server's CPU for a worker-protocol request (py-spy, see docs/benchmarks.md).
Here a closed connection goes back to a small per-process pool instead, and the next
request's "new" connection comes from it: the SQLite counterpart of psycopg's pool on
PostgreSQL. Django already opens SQLite connections with ``check_same_thread=False``.
"""

import queue

from django.db.backends.sqlite3 import base

IDLE_CONNECTIONS = 8
"""Connections kept per database file; more are opened when needed and closed after."""

_pools: dict[str, queue.LifoQueue] = {}


def _pool(database: str) -> queue.LifoQueue:
    key = str(database)
    pool = _pools.get(key)  # every open and close asks: build a queue only the first time
    if pool is None:
        pool = _pools.setdefault(key, queue.LifoQueue(maxsize=IDLE_CONNECTIONS))
    return pool


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        if not self.is_in_memory_db():
            try:
                return _pool(conn_params["database"]).get_nowait()
            except queue.Empty:
                pass
        return super().get_new_connection(conn_params)

    def _close(self):
        connection = self.connection
        if connection is None or self.is_in_memory_db():
            return super()._close()
        with self.wrap_database_errors:
            if connection.in_transaction:  # never hand on an open transaction
                connection.rollback()
            try:
                _pool(self.settings_dict["NAME"]).put_nowait(connection)
            except queue.Full:
                connection.close()
