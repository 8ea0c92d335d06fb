"""The conversion child process: reused between jobs, killed on a deadline or a crash, and reported."""

import os
import signal

import pytest

from pdf_worker.isolation import Aborted, ConversionChild, ConversionFailed, Deadline
from tests.components.worker import SLOW_PAGE_ENV

NO_LIMIT = Deadline(base=120, per_page=10)


@pytest.fixture
def child():
    process = ConversionChild("pdfium")
    yield process
    process.kill()


def _convert(child, pdf, out, **kwargs):
    kwargs.setdefault("should_stop", lambda: None)
    kwargs.setdefault("on_progress", lambda done, total: None)
    return child.convert(pdf, out, kwargs.pop("deadline", NO_LIMIT), **kwargs)


def test_one_child_converts_job_after_job(child, fixture_pdfs, tmp_path):
    ready = child.start(60)
    assert ready["converter"] == "pdfium" and ready["device"] == "cpu"
    pid = child.process.pid
    seen = []
    for index, name in enumerate(["crazyones.pdf", "pdflatex-outline.pdf"]):
        out = tmp_path / str(index)
        out.mkdir()
        done = _convert(child, fixture_pdfs / name, out, on_progress=lambda d, t: seen.append((d, t)))
        assert done["event"] == "done" and (out / "content.md").is_file()
    assert child.process.pid == pid  # the same process (models would stay loaded)
    assert seen[-1] == (4, 4) and (0, 4) in seen


def test_a_document_error_leaves_the_child_running(child, fixture_pdfs, tmp_path):
    child.start(60)
    with pytest.raises(ConversionFailed) as failed:
        _convert(child, fixture_pdfs / "encrypted-file.pdf", tmp_path)
    assert failed.value.retryable is False and failed.value.message.startswith("encrypted:")
    assert child.alive


def test_a_killed_child_fails_the_attempt_and_a_fresh_one_starts(child, fixture_pdfs, tmp_path, monkeypatch):
    monkeypatch.setenv(SLOW_PAGE_ENV, "30")
    child.start(60)

    def out_of_memory(done, total):
        os.kill(child.process.pid, signal.SIGKILL)  # what the kernel's OOM killer does

    with pytest.raises(ConversionFailed, match="conversion process died: killed by SIGKILL") as failed:
        _convert(child, fixture_pdfs / "crazyones.pdf", tmp_path, on_progress=out_of_memory)
    assert failed.value.retryable
    assert not child.alive
    monkeypatch.delenv(SLOW_PAGE_ENV)
    child.start(60)
    assert _convert(child, fixture_pdfs / "crazyones.pdf", tmp_path)["pages"] == 1


def test_the_deadline_scales_with_pages_and_kills_the_child(child, fixture_pdfs, tmp_path, monkeypatch):
    monkeypatch.setenv(SLOW_PAGE_ENV, "30")
    child.start(60)
    with pytest.raises(ConversionFailed, match=r"deadline exceeded: converting 4 page\(s\) \(limit 3s") as failed:
        _convert(child, fixture_pdfs / "pdflatex-outline.pdf", tmp_path, deadline=Deadline(base=1, per_page=0.5))
    assert failed.value.retryable and not child.alive


def test_a_stop_request_kills_the_conversion_within_moments(child, fixture_pdfs, tmp_path, monkeypatch):
    monkeypatch.setenv(SLOW_PAGE_ENV, "30")
    child.start(60)
    started = []
    with pytest.raises(Aborted, match="job cancelled"):
        _convert(
            child,
            fixture_pdfs / "crazyones.pdf",
            tmp_path,
            on_progress=lambda d, t: started.append(d),
            should_stop=lambda: "job cancelled" if started else None,
        )
    assert not child.alive
