"""How many conversion children a worker runs, and which GPU each one sees.

``--gpus 0,1 --slots-per-gpu 2`` gives four slots, pinned 0, 1, 0, 1 through
``CUDA_VISIBLE_DEVICES`` (inside its child, each slot's GPU is ``cuda:0``). On the CPU,
``--slots N`` gives N unpinned slots. All slots share one worker registration that
announces ``capabilities.slots``; the server then lets this worker hold that many leases.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

MAX_SLOTS = 64
"""The server accepts at most this many slots per worker registration."""
NVIDIA_SMI_SECONDS = 20


@dataclass(frozen=True)
class Gpu:
    index: str
    name: str | None = None
    memory_mb: int | None = None


@dataclass(frozen=True)
class SlotSpec:
    index: int
    gpu: str | None
    """The GPU (as ``CUDA_VISIBLE_DEVICES`` names it) this slot's child is pinned to; None on the CPU."""
    env: dict[str, str] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        return f"slot {self.index}" + (f" (GPU {self.gpu})" if self.gpu is not None else "")


class SlotError(ValueError):
    """The flags do not describe a usable set of slots; the message says why."""


def detect_gpus() -> list[Gpu]:
    """NVIDIA GPUs with name and memory: ``nvidia-smi``, else torch (in a subprocess, so the
    worker itself never holds a CUDA context), else none."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            done = subprocess.run(
                [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=NVIDIA_SMI_SECONDS,
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode == 0:
            gpus = []
            for line in done.stdout.splitlines():
                cells = [cell.strip() for cell in line.split(",")]
                if len(cells) == 3:
                    gpus.append(Gpu(cells[0], cells[1] or None, int(cells[2]) if cells[2].isdigit() else None))
            return gpus
    if importlib.util.find_spec("torch") is None:
        return []
    probe = (
        "import json, torch\n"
        "n = torch.cuda.device_count() if torch.cuda.is_available() else 0\n"
        "print(json.dumps([[str(i), torch.cuda.get_device_name(i), "
        "torch.cuda.get_device_properties(i).total_memory // 2**20] for i in range(n)]))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=_all_gpus_env()
        )
        return [Gpu(*row) for row in json.loads(done.stdout.strip().splitlines()[-1])]
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return []


def _all_gpus_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}


def plan(
    *,
    device: str,
    converter: str,
    gpus: list[str] | None,
    slots_per_gpu: int,
    slots: int | None,
    detected: list[Gpu],
) -> tuple[str, list[SlotSpec]]:
    """Resolve ``--device``, ``--gpus``, ``--slots-per-gpu`` and ``--slots``; returns ``(device, slots)``.

    ``--gpus`` is taken as given (not checked against the hardware). Without it, the GPUs
    are those in ``CUDA_VISIBLE_DEVICES`` when set, else all detected ones. ``auto`` uses
    GPUs when there are any and the converter can use them (pdfium cannot, so it stays on
    the CPU unless ``--gpus`` is given).
    """
    if slots_per_gpu < 1:
        raise SlotError("--slots-per-gpu must be 1 or more")
    if slots is not None and slots < 1:
        raise SlotError("--slots must be 1 or more")
    if device == "cpu" and gpus:
        raise SlotError("--gpus needs --device cuda or auto, not --device cpu")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    available = gpus or ([g.strip() for g in visible.split(",") if g.strip()] if visible is not None else None)
    if available is None:
        available = [gpu.index for gpu in detected]
    use_gpus = device == "cuda" or (device == "auto" and bool(gpus or (available and converter != "pdfium")))
    if use_gpus:
        if not available:
            raise SlotError(
                "--device cuda: no GPU found (nvidia-smi lists none and torch sees none); "
                "name them with --gpus 0,1,… or use --device cpu"
            )
        if slots is not None:
            raise SlotError("--slots is for the CPU; with GPUs use --slots-per-gpu (slots = GPUs × slots per GPU)")
        count = len(available) * slots_per_gpu
        specs = [
            SlotSpec(i, gpu, {"CUDA_VISIBLE_DEVICES": gpu, "TORCH_DEVICE": "cuda"})
            for i in range(count)
            for gpu in [available[i % len(available)]]
        ]
        resolved = "cuda"
    else:
        count = slots or 1
        hide = {"CUDA_VISIBLE_DEVICES": "", "TORCH_DEVICE": "cpu"} if device == "cpu" else {}
        specs = [SlotSpec(i, None, dict(hide)) for i in range(count)]
        resolved = "cpu"
    if count > MAX_SLOTS:
        raise SlotError(f"{count} slots asked for; a worker may run at most {MAX_SLOTS}")
    return resolved, specs


def capabilities(device: str, specs: list[SlotSpec], detected: list[Gpu]) -> dict:
    """What the worker announces about its hardware: slots, device, and each GPU it uses."""
    known = {gpu.index: gpu for gpu in detected}
    used = sorted({spec.gpu for spec in specs if spec.gpu is not None}, key=lambda g: (len(g), g))
    gpus = [known.get(index, Gpu(index)) for index in used]
    first = gpus[0] if gpus else None
    return {
        "slots": len(specs),
        "device": device,
        "gpu": first.name[:200] if first and first.name else None,
        "gpu_memory_mb": first.memory_mb if first else None,
        "gpus": [{"index": gpu.index, "name": gpu.name, "memory_mb": gpu.memory_mb} for gpu in gpus],
    }
