"""The worker's side of the conversion child: start it, hand it jobs, enforce deadlines, kill it.

A crash, an out-of-memory kill or a deadline ends the child (its whole process group)
and fails that attempt with the child's last stderr lines; the next job gets a fresh
child. The child is otherwise kept between jobs so its models stay loaded.
"""

import collections
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("pdf_worker.child")
STDERR_LINES = 30
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class ConversionFailed(Exception):
    """This attempt failed; ``retryable`` is False when the document itself is at fault."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Aborted(Exception):
    """The conversion was stopped on purpose (lease lost, job cancelled, shutdown)."""


@dataclass
class Deadline:
    base: float
    per_page: float

    def seconds(self, pages: int | None) -> float:
        return self.base + self.per_page * (pages or 0)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with status {code}"


def _read_messages(process: subprocess.Popen, messages: queue.Queue, stderr: collections.deque) -> None:
    for line in process.stdout:
        try:
            messages.put(json.loads(line))
        except ValueError:
            stderr.append(line.rstrip())
    messages.put(None)


def _read_stderr(process: subprocess.Popen, stderr: collections.deque) -> None:
    for line in process.stderr:
        line = line.rstrip()
        stderr.append(line)
        log.debug("%s", line)


class ConversionChild:
    """One conversion process; ``env`` is added to the worker's environment for it
    (``CUDA_VISIBLE_DEVICES`` pins it to a GPU)."""

    def __init__(self, converter: str, env: dict[str, str] | None = None):
        self.converter = converter
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.info: dict = {}
        self._messages: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_tail(self) -> str:
        lines = list(self._stderr)
        return ("\nlast stderr lines of the conversion process:\n" + "\n".join(lines)) if lines else ""

    def start(self, timeout: float) -> dict:
        """Start a child and wait until its converter is loaded; returns what it reported."""
        self.kill()
        self._messages, self._stderr = queue.Queue(), collections.deque(maxlen=STDERR_LINES)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pdf_worker.child", self.converter],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
            env=os.environ | self.env,
        )
        # Each reader gets this child's own queue and buffer: a dying predecessor's reader
        # must never post into its successor's.
        threading.Thread(target=_read_messages, args=(self.process, self._messages, self._stderr), daemon=True).start()
        threading.Thread(target=_read_stderr, args=(self.process, self._stderr), daemon=True).start()
        message = self._next(time.monotonic() + timeout, lambda: None)
        if message.get("event") != "ready":
            tail = self.stderr_tail()
            self.kill()
            raise ConversionFailed(f"converter {self.converter} failed to start: {message.get('message')}{tail}")
        self.info = message
        return message

    def _next(self, deadline: float, should_stop: Callable[[], str | None], what: str = "") -> dict:
        """The child's next message; kills it on a deadline, a stop request or its death."""
        while True:
            reason = should_stop()
            if reason:
                self.kill()
                raise Aborted(reason)
            if time.monotonic() > deadline:
                self.kill()
                raise ConversionFailed(
                    f"deadline exceeded: {what or 'start-up'} took too long; "
                    f"the conversion process was killed{self.stderr_tail()}"
                )
            try:
                message = self._messages.get(timeout=0.2)
            except queue.Empty:
                continue
            if message is None:
                code = self.process.wait() if self.process else None
                self.process = None
                raise ConversionFailed(f"conversion process died: {describe_exit(code)}{self.stderr_tail()}")
            return message

    def _send(self, request: dict) -> None:
        if not self.alive:
            raise ConversionFailed("the conversion process is not running")
        self._stderr.clear()
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def _raise_error(self, message: dict) -> None:
        raise ConversionFailed(message["message"], retryable=message.get("retryable", True))

    def page_count(self, pdf: Path, timeout: float, *, should_stop: Callable[[], str | None]) -> int:
        """The document's page count, read by the child (so a hostile PDF can only crash the child)."""
        self._send({"count": str(pdf)})
        message = self._next(time.monotonic() + timeout, should_stop, "counting pages")
        if message.get("event") == "error":
            self._raise_error(message)
        return int(message["page_count"])

    def convert(
        self,
        pdf: Path,
        out_dir: Path,
        deadline: Deadline,
        *,
        should_stop: Callable[[], str | None],
        on_progress: Callable[[int, int], None],
        pages: range | None = None,
    ) -> dict:
        """Convert in the child; returns its ``done`` message or raises ConversionFailed / Aborted.

        The deadline counts the pages of this request: a page range of a long document gets
        the deadline of its own pages, not of the whole document.
        """
        self._send({"pdf": str(pdf), "out": str(out_dir), "pages": [pages.start, pages.stop] if pages else None})
        started = time.monotonic()
        limit, total = deadline.seconds(None), None
        while True:
            what = f"converting {total} page(s) (limit {limit:.0f}s = --deadline-base + --deadline-per-page × pages)"
            message = self._next(started + limit, should_stop, what)
            event = message.get("event")
            if event == "progress":
                if total is None:
                    total = message["total"]
                    limit = deadline.seconds(total)
                on_progress(message["done"], message["total"])
            elif event == "done":
                return message
            elif event == "error":
                self._raise_error(message)

    def rss_mb(self) -> float:
        """Resident memory of the child's whole process group (helpers included), in MiB; 0 when not running."""
        if not self.alive:
            return 0.0
        group, total = self.process.pid, 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended while we looked
            if int(fields[2]) == group:  # fields[2] is pgrp, fields[21] rss in pages (proc(5))
                total += int(fields[21])
        return total * PAGE_SIZE / 2**20

    def kill(self) -> None:
        """End the child's whole process group (helpers included)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def close(self) -> None:
        """Ask the child to finish (stdin closed), then make sure its group is gone."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
