"""bench/gpu_marker.py runs end to end in its CPU dry run (pdfium, 2 slots), so CI catches a broken benchmark."""

import re
import shutil
import subprocess
import sys

import pytest

from tests.components.server import REPO

pytestmark = pytest.mark.slow


def test_the_gpu_benchmark_dry_run_converts_a_folder_and_prints_pages_per_second(fixture_pdfs, tmp_path):
    folder = tmp_path / "pdfs"
    folder.mkdir()
    for name in ("crazyones.pdf", "shared-mime-info-spec.pdf"):
        shutil.copy(fixture_pdfs / name, folder / name)
    done = subprocess.run(
        [sys.executable, "bench/gpu_marker.py", str(folder), "--dry-run", "--chunk-pages", "10"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 PDFs, 18 pages" in done.stdout
    assert "BlobForge: 2 jobs (0 failed), 18 pages" in done.stdout
    assert re.search(r"^\| cpu \| \d+\.\d\d \| - \|$", done.stdout, re.M)
    assert re.search(r"^\| total \| \d+\.\d\d \| - \|$", done.stdout, re.M)
    assert "marker's own batch command: skipped" in done.stdout
