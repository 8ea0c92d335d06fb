"""The benchmark scripts still run: each once in its tiny mode, results not recorded.

Benchmarks are not tests, so nothing here looks at a number: a script must exit 0 and
print its table (a markdown header row and separator). The scripts are started all at
once and each test waits for its own: they spend most of their time starting servers
and ``manage.py`` processes, so together they finish in about the time of the slowest.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
# The scripts that follow the ``--tiny``/``--no-record`` convention (gpu_marker.py has its own smoke mode).
SCRIPTS = ["job_cycles.py", "claim_latency.py", "ingest.py", "e2e_cpu.py", "live_updates.py"]


@pytest.fixture(scope="module")
def runs():
    started = {}
    for script in SCRIPTS:
        output = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen(
            [sys.executable, str(BENCH / script), "--tiny", "--no-record"],
            cwd=BENCH.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started[script] = (process, output)
    yield started
    for process, output in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_in_tiny_mode(runs, script):
    process, output = runs[script]
    try:
        code = process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    output.seek(0)
    printed = output.read()
    assert code == 0, f"{script} exited {code}:\n{printed[-4000:]}"
    assert "\n## " in printed and "|---" in printed, f"{script} printed no table:\n{printed[-2000:]}"
