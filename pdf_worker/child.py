"""The conversion child process: ``python -m pdf_worker.child CONVERTER``.

It loads its converter once (models stay in memory for every later job), says
``ready`` (with its pid and the GPU it was pinned to), then serves one request per line
read from stdin: ``{"count": PDF}`` answers ``counted`` with the page count;
``{"pdf": …, "out": …, "pages": [start, stop] | null}`` converts and answers with JSON
lines (``progress``, then ``done`` with the converter's metadata, or ``error``) on a
private copy of stdout. Library
output that would go to stdout is sent to stderr instead, where the worker keeps the
last lines for error messages.

It leads its own process group (the worker starts it with a new session) so the
worker can end it together with any helper processes it started, and it ends that
group itself if the worker dies (``kill -9``) rather than converting for nobody.

Test hook: ``BLOBFORGE_WORKER_TEST_SLOW_PAGE_SECONDS`` makes every page take that much
longer, so tests can act deterministically in the middle of a conversion. Never set it
in production.
"""

import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from pdf_worker.converters import InputError, create, open_pdf

SLOW_PAGE_ENV = "BLOBFORGE_WORKER_TEST_SLOW_PAGE_SECONDS"


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(**message) -> None:
        channel.write(json.dumps(message, default=str) + "\n")  # default=str: converter metadata
        channel.flush()

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    converter = create(args[0])
    try:
        converter.load()
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which refuses to start
        traceback.print_exc()
        send(event="fatal", message=f"{type(exc).__name__}: {exc}")
        return 3
    send(
        event="ready",
        converter=converter.name,
        version=converter.version,
        device=converter.device,
        pid=os.getpid(),
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
    )
    slow = float(os.environ.get(SLOW_PAGE_ENV) or 0)

    def progress(done: int, total: int) -> None:
        if slow and done:
            time.sleep(slow)
        send(event="progress", done=done, total=total)

    for line in sys.stdin:
        request = json.loads(line)
        try:
            if "count" in request:
                document = open_pdf(Path(request["count"]))
                send(event="counted", page_count=len(document))
                document.close()
                continue
            pages = range(*request["pages"]) if request.get("pages") else None
            result = converter.convert(Path(request["pdf"]), Path(request["out"]), pages=pages, progress=progress)
            send(event="done", pages=result.pages, page_count=result.page_count, metadata=result.metadata)
        except InputError as exc:
            send(event="error", retryable=False, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad document must not end the child
            traceback.print_exc()
            send(event="error", retryable=True, message=f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
