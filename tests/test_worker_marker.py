"""marker: where the worker looks for its weights, the exact start-up error when they are absent,
``fetch-models``, and (on a GPU machine with the weights) real conversions through the slot pool."""

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from pdf_worker.converters import ConverterUnavailable, choose
from pdf_worker.converters.marker import preflight
from tests.components.server import REPO
from tests.components.worker import JobsView, ingest_one

MARKER_INSTALLED = importlib.util.find_spec("marker") is not None


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BLOBFORGE_") and k != "MODEL_CACHE_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "pdf_worker", *args],
        cwd=REPO,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _worker_env(**extra: str) -> dict[str, str]:
    return {
        "BLOBFORGE_SERVER_URL": "http://127.0.0.1:9",  # never contacted: the check comes first
        "BLOBFORGE_WORKER_ID": "gpu-1",
        "BLOBFORGE_WORKER_SECRET": "bfw_x",
    } | extra


def test_marker_without_weights_stops_the_worker_at_start_up_saying_where_it_looked(tmp_path):
    models, hf, root = tmp_path / "models", tmp_path / "hf", tmp_path / "fetched"
    models.mkdir()
    done = _run(
        "--converter",
        "marker",
        "--gpus",
        "0",
        env=_worker_env(MODEL_CACHE_DIR=str(models), HF_HOME=str(hf), BLOBFORGE_MARKER_MODELS=str(root)),
    )
    assert done.returncode == 2
    assert "marker model weights not found" in done.stderr
    looked = re.search(r"looked in (.*?)(;|\. )", done.stderr)[1]
    assert looked == f"{root / 'models'} (BLOBFORGE_MARKER_MODELS), {models} (MODEL_CACHE_DIR), {hf} (HF_HOME)"
    assert "never downloads weights" in done.stderr and "--converter pdfium" in done.stderr
    assert "blobforge-worker fetch-models --dest DIR" in done.stderr and "BLOBFORGE_MARKER_MODELS=DIR" in done.stderr
    assert "registered" not in done.stderr and " ready: " not in done.stderr


@pytest.mark.skipif(MARKER_INSTALLED, reason="marker-pdf is installed here")
def test_weights_under_blobforge_marker_models_are_found(tmp_path, monkeypatch):
    (tmp_path / "models" / "layout").mkdir(parents=True)
    (tmp_path / "models" / "layout" / "model.safetensors").write_bytes(b"\0" * 16)
    monkeypatch.setenv("BLOBFORGE_MARKER_MODELS", str(tmp_path))
    with pytest.raises(ConverterUnavailable, match="marker-pdf is not installed") as refused:
        preflight()
    assert "weights not found" not in str(refused.value)  # only what is really missing is named


def test_auto_falls_back_to_pdfium_and_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("BLOBFORGE_MARKER_MODELS", raising=False)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "nothing-here"))
    name, why = choose("auto")
    assert name == "pdfium"
    assert why.startswith("auto: marker cannot run") and str(tmp_path / "nothing-here") in why
    assert choose("pdfium") == ("pdfium", "requested")


@pytest.mark.skipif(MARKER_INSTALLED, reason="marker-pdf is installed here: fetch-models would download")
def test_fetch_models_without_marker_pdf_fails_with_a_clear_message(tmp_path):
    done = _run("fetch-models", "--dest", str(tmp_path / "weights"), env={})
    assert done.returncode == 1
    assert "blobforge-worker fetch-models: marker-pdf is not installed" in done.stderr
    assert "pip install 'blobforge-worker[marker]'" in done.stderr
    assert not (tmp_path / "weights").exists()


def _cuda_available() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def _marker_ready() -> str | None:
    """Why the real-marker tests cannot run here (None when they can)."""
    if not MARKER_INSTALLED:
        return "needs marker-pdf (not installed here)"
    try:
        preflight()
    except Exception as exc:  # noqa: BLE001 - the reason is the skip message
        return f"needs marker's weights: {exc}"
    if not _cuda_available():
        return "needs a CUDA GPU (none on this machine)"
    return None


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(_marker_ready() is not None, reason=str(_marker_ready()))
def test_marker_on_a_gpu_converts_a_long_pdf_in_ranges_with_images_and_metadata(server, worker_factory, fixture_pdfs):
    worker_factory(server, "--converter", "marker", "--gpus", "0", "--chunk-pages", "10", name="gpu-marker")
    view = JobsView(server)
    job = view.wait_status(ingest_one(server, fixture_pdfs / "libtasn1.pdf"), {"done", "dead"}, timeout=600)
    assert job["status"] == "done", view.error(job)
    archive = zipfile.ZipFile(io.BytesIO(view.output_zip(job)))
    meta = json.loads(archive.read("meta.json"))
    assert meta["converter"]["name"] == "marker" and meta["device"].startswith("cuda")
    assert meta["slot"]["cuda_visible_devices"] == "0"
    assert [r["pages"] for r in meta["page_ranges"]] == ["1-10", "11-20", "21-30", "31-36"]
    assert meta["metadata"]["table_of_contents"] and len(meta["metadata"]["page_stats"]) == 36
    assert "Abstract Syntax Notation" in archive.read("content.md").decode()
    for link in re.findall(r"\]\((assets/[^)\s]+)\)", archive.read("content.md").decode()):
        assert link in archive.namelist()
