"""The GPU converter: marker-pdf (layout, OCR, tables) with its models loaded once per process.

marker downloads fonts and model weights on first use; a worker usually cannot (and
should not) reach the network, so ``preflight`` checks for the weights on disk before
the worker starts and says exactly where it looked and how to provide them, instead of
letting every job hang on a download that cannot happen.

Weights are looked for in ``$BLOBFORGE_MARKER_MODELS`` first (the folder
``blobforge-worker fetch-models --dest DIR`` fills: ``models/``, ``huggingface/``,
``fonts/``), then in marker's own cache folders (``MODEL_CACHE_DIR``, ``HF_HOME``).
"""

import importlib.util
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from pdf_worker.converters import (
    ASSETS_DIR,
    MARKDOWN_NAME,
    ConversionResult,
    ConverterUnavailable,
    Progress,
    open_pdf,
    page_range,
)

MODELS_ENV = "BLOBFORGE_MARKER_MODELS"
FONT_NAME = "GoNotoCurrent-Regular.ttf"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".gguf", ".onnx")
NOT_INSTALLED = "marker-pdf is not installed (pip install 'blobforge-worker[marker]')"
HOW_TO_PROVIDE = (
    "This worker never downloads weights. To provide them: on a machine with network access run "
    "`pip install 'blobforge-worker[marker]' && blobforge-worker fetch-models --dest DIR`, copy DIR to this "
    f"machine and set {MODELS_ENV}=DIR (or point MODEL_CACHE_DIR and HF_HOME at copies of marker's own "
    "caches, ~/.cache/datalab/models and ~/.cache/huggingface); or run this worker with --converter pdfium."
)


def root_layout(root: Path) -> dict[str, Path]:
    """The environment marker reads, for a folder filled by ``fetch-models``."""
    return {
        "MODEL_CACHE_DIR": root / "models",
        "HF_HOME": root / "huggingface",
        "FONT_PATH": root / "fonts" / FONT_NAME,
    }


def model_dirs() -> list[tuple[str, Path]]:
    """Where weights are looked for, as ``(variable, folder)``, in order."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    found = []
    if os.environ.get(MODELS_ENV, "").strip():
        found.append((MODELS_ENV, root_layout(Path(os.environ[MODELS_ENV].strip()))["MODEL_CACHE_DIR"]))
    found.append(("MODEL_CACHE_DIR", Path(os.environ.get("MODEL_CACHE_DIR") or cache_home / "datalab" / "models")))
    found.append(("HF_HOME", Path(os.environ.get("HF_HOME") or cache_home / "huggingface")))
    return found


def _has_weights(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    return any(path.suffix in WEIGHT_SUFFIXES and path.is_file() for path in folder.rglob("*"))


def preflight() -> Path:
    """Find the weights and point marker at them (environment, inherited by conversion children).

    Returns the folder holding them; raises ConverterUnavailable, saying where it looked
    and how to fix it, unless marker can run here.
    """
    problems = []
    dirs = model_dirs()
    found = next((folder for _, folder in dirs[:-1] if _has_weights(folder)), None)
    if found is None:
        looked = ", ".join(f"{folder} ({variable})" for variable, folder in dirs)
        problems.append(f"marker model weights not found: looked in {looked}")
    if importlib.util.find_spec("marker") is None:
        problems.append(NOT_INSTALLED)
    if problems:
        raise ConverterUnavailable("; ".join(problems) + ". " + HOW_TO_PROVIDE)
    if dirs[0][0] == MODELS_ENV and found == dirs[0][1]:
        layout = root_layout(found.parent)
        os.environ["MODEL_CACHE_DIR"], os.environ["HF_HOME"] = str(layout["MODEL_CACHE_DIR"]), str(layout["HF_HOME"])
        if layout["FONT_PATH"].is_file():
            os.environ["FONT_PATH"] = str(layout["FONT_PATH"])
    return found


class FetchFailed(Exception):
    """``fetch-models`` could not download the weights; the message says why."""


def fetch_models(dest: Path | None) -> str:
    """Download marker's weights and font with marker's own helpers; returns where they are.

    With ``dest`` they go to the folder layout ``BLOBFORGE_MARKER_MODELS`` expects;
    without it, to marker's own cache folders.
    """
    if importlib.util.find_spec("marker") is None:
        raise FetchFailed(f"{NOT_INSTALLED}: fetch-models uses marker's own download helpers")
    if dest is not None:
        for variable, path in root_layout(dest.resolve()).items():
            os.environ[variable] = str(path)
        (dest / "fonts").mkdir(parents=True, exist_ok=True)
    os.environ.pop("HF_HUB_OFFLINE", None)
    from marker.settings import settings

    host = urlsplit(settings.ARTIFACT_URL).hostname or "models.datalab.to"
    try:
        socket.create_connection((host, 443), timeout=15).close()
    except OSError as exc:
        raise FetchFailed(
            f"network unreachable: cannot connect to {host}:443 ({exc}). Run fetch-models on a machine with "
            f"internet access and copy the folder to this one (see docs/worker.md, air-gapped install)"
        ) from exc
    try:
        from marker.models import create_model_dict
        from marker.util import download_font

        download_font()
        create_model_dict(device="cpu")  # downloads every model marker uses, then loads it once as a check
    except Exception as exc:  # noqa: BLE001 - any download failure is reported with its cause
        raise FetchFailed(f"downloading marker's weights failed: {type(exc).__name__}: {exc}") from exc
    if dest is None:
        return f"marker's weights are in its own cache ({settings.FONT_PATH} and MODEL_CACHE_DIR)"
    return f"marker's weights are in {dest}; on each worker set {MODELS_ENV}={dest}"


class MarkerConverter:
    name = "marker"

    def __init__(self) -> None:
        self.models = None

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return f"marker-pdf {version('marker-pdf')}"

    @property
    def device(self) -> str:
        import torch

        if torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name(0)})"
        return "cpu"

    def load(self) -> None:
        preflight()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on a download that cannot happen
        from marker.models import create_model_dict

        self.models = create_model_dict()

    def convert(
        self, pdf_path: Path, out_dir: Path, *, pages: range | None = None, progress: Progress | None = None
    ) -> ConversionResult:
        from marker.converters.pdf import PdfConverter
        from marker.output import text_from_rendered

        document = open_pdf(pdf_path)  # the shared input checks (and the page count)
        count = len(document)
        document.close()
        wanted = page_range(pages, count)
        if progress:
            progress(0, len(wanted))
        config = {"disable_tqdm": True}
        if len(wanted) != count:
            config["page_range"] = list(wanted)  # marker wants the 0-based page numbers themselves
        rendered = PdfConverter(artifact_dict=self.models, config=config)(str(pdf_path))
        markdown, _, images = text_from_rendered(rendered)
        assets = out_dir / ASSETS_DIR
        assets.mkdir(parents=True, exist_ok=True)
        for name, image in images.items():
            safe = Path(name).name
            image.save(assets / safe)
            markdown = re.sub(rf"\]\({re.escape(name)}\)", f"]({ASSETS_DIR}/{safe})", markdown)
        (out_dir / MARKDOWN_NAME).write_text(markdown, encoding="utf-8")
        if progress:
            progress(len(wanted), len(wanted))
        metadata = getattr(rendered, "metadata", None) or {}
        keep = {key: metadata[key] for key in ("table_of_contents", "page_stats") if key in metadata}
        return ConversionResult(pages=len(wanted), page_count=count, metadata=keep)
