"""The slot pool: N conversion children under one registration, pinned to GPUs, recycled, restarted after a crash.

No GPU here: ``--gpus`` is taken as given, so the pdfium converter runs in children pinned
with ``CUDA_VISIBLE_DEVICES``, and each child reports what it was given into ``meta.json``.
"""

import io
import json
import os
import shutil
import signal
import zipfile
from pathlib import Path

import pytest

from pdf_worker.slots import Gpu, SlotError, capabilities, plan
from tests.components.worker import SLOW_PAGE_ENV, JobsView, wait_for

pytestmark = pytest.mark.slow

SMALL = ["crazyones.pdf", "example.pdf", "multilang.pdf", "tagged.pdf", "pdflatex-outline.pdf", "jpeg.pdf"]


def _folder(fixture_pdfs: Path, tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(fixture_pdfs / name, folder / name)
    return folder


def _ingest(server, folder: Path) -> None:
    server.manage("ingest", str(folder), "--json")


def _all_finished(view: JobsView, count: int, timeout: float = 180) -> list[dict]:
    jobs = wait_for(
        lambda: len(found := view.all()) == count and all(j["status"] in ("done", "dead") for j in found) and found,
        timeout,
        f"{count} jobs to finish",
    )
    return [view.get(job["id"]) for job in jobs]


def _meta(view: JobsView, job: dict) -> dict:
    assert job["status"] == "done", f"{job['filename']}: {view.error(job)}"
    return json.loads(zipfile.ZipFile(io.BytesIO(view.output_zip(job))).read("meta.json"))


def _children(worker_pid: int) -> list[int]:
    """The worker's conversion children, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == worker_pid and b"pdf_worker.child" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_gpu_slots_are_pinned_and_each_claims_its_own_job(server, worker_factory, fixture_pdfs, tmp_path):
    worker = worker_factory(
        server, "--converter", "pdfium", "--gpus", "0,1", "--slots-per-gpu", "2", env={SLOW_PAGE_ENV: "4"}
    )
    registered = json.loads(
        server.shell(
            "import json\nfrom workers.models import Worker\n"
            f"w = Worker.objects.get(name={worker.worker_id!r})\n"
            "print(json.dumps({'slots': w.slots, 'capabilities': w.capabilities}))\n"
        )
        .strip()
        .splitlines()[-1]
    )
    assert registered["slots"] == 4  # one registration for all four slots
    caps = registered["capabilities"]
    assert caps["slots"] == 4 and caps["device"] == "cuda"
    assert [gpu["index"] for gpu in caps["gpus"]] == ["0", "1"]

    view = JobsView(server)
    _ingest(server, _folder(fixture_pdfs, tmp_path, SMALL))
    # Four leases at once for the one worker: every slot has its own job.
    wait_for(
        lambda: sum(j["status"] == "running" and j["worker"] == worker.worker_id for j in view.all()) == 4,
        60,
        "four jobs running at once on the worker's four slots",
    )
    metas = [_meta(view, job) for job in _all_finished(view, len(SMALL))]
    pinned = {meta["slot"]["index"]: meta["slot"]["cuda_visible_devices"] for meta in metas}
    assert pinned == {0: "0", 1: "1", 2: "0", 3: "1"}  # what each child found in its own environment
    assert all(meta["slot"]["gpu"] == meta["slot"]["cuda_visible_devices"] for meta in metas)
    assert len({meta["slot"]["child_pid"] for meta in metas}) == 4
    assert worker.alive


def test_a_child_is_recycled_after_n_jobs(server, worker_factory, fixture_pdfs, tmp_path):
    worker = worker_factory(server, "--converter", "pdfium", "--max-jobs-per-child", "2")
    _ingest(server, _folder(fixture_pdfs, tmp_path, SMALL[:3]))
    view = JobsView(server)
    metas = [_meta(view, job) for job in _all_finished(view, 3)]
    by_child: dict[int, list[int]] = {}
    for meta in metas:
        by_child.setdefault(meta["slot"]["child_pid"], []).append(meta["slot"]["child_job"])
    assert sorted(sorted(jobs) for jobs in by_child.values()) == [[1], [1, 2]]
    assert "recycling the conversion process: it converted 2 job(s)" in worker.log()
    assert worker.log().count(" ready: ") >= 2


def test_a_child_over_its_memory_limit_is_recycled(server, worker_factory, fixture_pdfs, tmp_path):
    worker = worker_factory(server, "--converter", "pdfium", "--child-memory-limit", "1")
    _ingest(server, _folder(fixture_pdfs, tmp_path, SMALL[:2]))
    view = JobsView(server)
    metas = [_meta(view, job) for job in _all_finished(view, 2)]
    assert len({meta["slot"]["child_pid"] for meta in metas}) == 2
    assert all(meta["slot"]["child_job"] == 1 for meta in metas)
    assert "MiB (--child-memory-limit 1 MiB)" in worker.log()


def test_a_crashed_child_costs_one_attempt_and_its_slot_starts_a_fresh_one(
    server, worker_factory, fixture_pdfs, tmp_path
):
    worker = worker_factory(server, "--converter", "pdfium", "--slots", "2", env={SLOW_PAGE_ENV: "3"})
    assert len(_children(worker.process.pid)) == 2
    view = JobsView(server)
    _ingest(server, _folder(fixture_pdfs, tmp_path, ["pdflatex-outline.pdf", "crazyones.pdf", "tagged.pdf"]))
    wait_for(
        lambda: sum(j["stage"] == "converting" and j["status"] == "running" for j in view.all()) == 2,
        60,
        "both slots converting",
    )
    victim = _children(worker.process.pid)[0]
    os.kill(victim, signal.SIGKILL)  # what the kernel's OOM killer does

    jobs = _all_finished(view, 3)
    retried = [job for job in jobs if job["attempts"] == 2]
    assert len(retried) == 1, [(j["filename"], j["attempts"]) for j in jobs]
    assert any("conversion process died: killed by SIGKILL" in e["message"] for e in retried[0]["events"])
    assert all(job["attempts"] == 1 for job in jobs if job not in retried)
    metas = [_meta(view, job) for job in jobs]
    assert victim not in {meta["slot"]["child_pid"] for meta in metas}
    assert worker.alive and len(_children(worker.process.pid)) == 2  # the slot has a fresh child
    assert worker.log().count(" ready: ") == 3


# --- the plan itself (no processes) ---------------------------------------------------------


def test_slots_interleave_gpus_and_pin_each_child(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    device, specs = plan(
        device="auto",
        converter="marker",
        gpus=None,
        slots_per_gpu=2,
        slots=None,
        detected=[
            Gpu("0", "NVIDIA H100", 81559),
            Gpu("1", "NVIDIA H100", 81559),
        ],
    )
    assert device == "cuda"
    assert [(s.index, s.gpu, s.env["CUDA_VISIBLE_DEVICES"]) for s in specs] == [
        (0, "0", "0"),
        (1, "1", "1"),
        (2, "0", "0"),
        (3, "1", "1"),
    ]
    caps = capabilities(device, specs, [Gpu("0", "NVIDIA H100", 81559), Gpu("1", "NVIDIA H100", 81559)])
    assert caps["gpu"] == "NVIDIA H100" and caps["gpu_memory_mb"] == 81559 and caps["slots"] == 4


def test_cuda_visible_devices_limits_the_gpus_used(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    device, specs = plan(
        device="auto", converter="marker", gpus=None, slots_per_gpu=1, slots=None, detected=[Gpu("0"), Gpu("2")]
    )
    assert device == "cuda" and [s.gpu for s in specs] == ["2"]


def test_without_gpus_there_are_cpu_slots(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    device, specs = plan(device="auto", converter="marker", gpus=None, slots_per_gpu=1, slots=3, detected=[])
    assert device == "cpu" and [s.gpu for s in specs] == [None, None, None]
    assert capabilities(device, specs, [])["gpu"] is None
    # pdfium never uses a GPU, so auto keeps it on the CPU even where there are GPUs
    device, _ = plan(device="auto", converter="pdfium", gpus=None, slots_per_gpu=1, slots=None, detected=[Gpu("0")])
    assert device == "cpu"
    _, specs = plan(device="cpu", converter="marker", gpus=None, slots_per_gpu=1, slots=1, detected=[Gpu("0")])
    assert specs[0].env == {"CUDA_VISIBLE_DEVICES": "", "TORCH_DEVICE": "cpu"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "cpu", "gpus": ["0"]}, "--gpus needs --device cuda"),
        ({"device": "cuda"}, "no GPU found"),
        ({"device": "cuda", "gpus": ["0"], "slots": 2}, "--slots is for the CPU"),
        ({"device": "cuda", "gpus": ["0", "1"], "slots_per_gpu": 40}, "at most 64"),
    ],
)
def test_impossible_slot_flags_are_refused_with_the_reason(monkeypatch, kwargs, message):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    arguments = {"device": "auto", "converter": "marker", "gpus": None, "slots_per_gpu": 1, "slots": None}
    with pytest.raises(SlotError, match=message):
        plan(**(arguments | kwargs), detected=[])
