"""Run windows: when a worker may claim, including windows across midnight."""

import subprocess
import sys
from datetime import datetime

import pytest

from pdf_worker.schedule import is_open, parse_window, seconds_until_open
from tests.components.server import REPO


def at(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, 1, 5, hour, minute)


def test_a_day_window():
    windows = [parse_window("09:00-17:30")]
    assert is_open(windows, at("09:00")) and is_open(windows, at("17:29"))
    assert not is_open(windows, at("17:30")) and not is_open(windows, at("08:59"))
    assert seconds_until_open(windows, at("08:00")) == 3600


def test_a_window_across_midnight_and_several_windows():
    windows = [parse_window("22:00-06:00"), parse_window("12:00-13:00")]
    for open_at in ("23:59", "00:00", "05:59", "22:00", "12:30"):
        assert is_open(windows, at(open_at)), open_at
    for closed_at in ("06:00", "11:59", "13:00", "21:59"):
        assert not is_open(windows, at(closed_at)), closed_at
    assert seconds_until_open(windows, at("13:00")) == 9 * 3600
    assert is_open([], at("03:00"))  # no windows: always


@pytest.mark.parametrize("text", ["9-17", "25:00-01:00", "10:00-10:00", "10:60-11:00", ""])
def test_bad_windows_are_refused(text):
    with pytest.raises(ValueError):
        parse_window(text)


def test_the_cli_refuses_a_bad_window_and_documents_every_flag():
    bad = subprocess.run(
        [sys.executable, "-m", "pdf_worker", "--run-window", "nine-to-five"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "HH:MM-HH:MM" in bad.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "pdf_worker", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    ).stdout
    for flag in (
        "--converter",
        "--once",
        "--max-jobs",
        "--run-window",
        "--shutdown-grace",
        "--work-dir",
        "--log-level",
        "--deadline-base",
        "--deadline-per-page",
        "BLOBFORGE_SERVER_URL",
        "BLOBFORGE_WORKER_ID",
        "BLOBFORGE_WORKER_SECRET",
    ):
        assert flag in usage
