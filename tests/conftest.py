"""Test-wide fixtures. Each real component has its own module under tests/components/."""

import pytest

pytest_plugins = [
    "tests.components.seaweedfs",
    "tests.components.server",
    "tests.components.oidc",
    "tests.components.worker",
    "tests.components.browser",
    "tests.components.console",
]

FIXTURE_PDFS = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pdfs"


@pytest.fixture(autouse=True)
def _isolated_local_storage(settings, tmp_path):
    """In-process tests store objects in their own temporary folder."""
    from jobs import storage

    settings.LOCAL_STORAGE_DIR = tmp_path / "storage"
    storage.reset_backend()
    yield
    storage.reset_backend()


@pytest.fixture
def fixture_pdfs():
    if not FIXTURE_PDFS.is_dir():
        pytest.skip(f"fixture PDFs not found at {FIXTURE_PDFS}")
    return FIXTURE_PDFS
