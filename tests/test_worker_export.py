"""``manage.py export``: finished documents as <name>.md + <name>.assets/, mirroring ingest paths, and nothing
written outside the destination whatever the stored names or archive members say."""

import hashlib
import io
import json
import shutil
import zipfile

import pytest
import requests

from tests.components.worker import JobsView, ingest_one

pytestmark = pytest.mark.slow


def _export(server, dest, *args) -> dict:
    return json.loads(server.manage("export", str(dest), *args, "--json").stdout.strip().splitlines()[-1])


def _hostile_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("content.md", "# Heading\n\n![x](assets/ok.png) ![y](assets/../../../escaped.png)\n")
        archive.writestr("assets/ok.png", b"png")
        archive.writestr("../../escaped.txt", b"outside")
        archive.writestr("/etc/absolute.txt", b"outside")
        archive.writestr("assets/../../sneaky.png", b"outside")
    return buffer.getvalue()


def _complete_by_hand(server, job_id: int, data: bytes) -> None:
    """A misbehaving worker: valid protocol, hostile archive."""
    name, secret = server.create_worker("hand")
    session = server.worker_session(name, secret)
    api = f"{server.base_url}/api/v1/worker/"
    claim = session.post(api + "claim", json={"wait": 5}, timeout=30).json()
    assert claim["job"]["id"] == job_id
    lease = claim["lease"]["token"]
    signed = session.post(
        api + f"jobs/{job_id}/upload-url", json={"lease": lease, "size": len(data)}, timeout=10
    ).json()
    assert requests.put(signed["url"], data=data, headers=signed["headers"], timeout=10).status_code in (200, 201)
    output = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    done = session.post(api + f"jobs/{job_id}/complete", json={"lease": lease, "output": output}, timeout=10)
    assert done.status_code == 200, done.text


def test_export_mirrors_ingest_paths_and_stays_inside_dest(server, worker_factory, fixture_pdfs, tmp_path):
    hostile_id = ingest_one(server, fixture_pdfs / "tagged.pdf")
    _complete_by_hand(server, hostile_id, _hostile_zip())

    tree = tmp_path / "library"
    (tree / "reports" / "2024").mkdir(parents=True)
    (tree / "misc").mkdir()
    shutil.copy(fixture_pdfs / "example.pdf", tree / "reports" / "2024" / "example.pdf")
    shutil.copy(fixture_pdfs / "jpeg.pdf", tree / "reports" / "scan one.pdf")
    shutil.copy(fixture_pdfs / "crazyones.pdf", tree / "misc" / "crazyones.pdf")
    server.manage("ingest", str(tree), "--json")
    # A client that declared a path with .. in it (its bytes are another real PDF).
    view = JobsView(server)
    data = (fixture_pdfs / "multilang.pdf").read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    declared = view.session.post(
        f"{server.base_url}/api/v1/blobs",
        json={"sha256": sha256, "size": len(data), "path": "../../outside/evil.pdf"},
        timeout=10,
    ).json()
    upload = declared["upload"]
    requests.request(upload["method"], upload["url"], data=data, headers=upload["headers"], timeout=10)
    view.session.post(f"{server.base_url}/api/v1/jobs", json={"sha256": sha256}, timeout=10).raise_for_status()

    worker_factory(server, "--converter", "pdfium", name="exporter")
    for job in view.all():
        assert view.wait_status(job["id"], {"done", "dead"}, timeout=90)["status"] == "done"

    dest = tmp_path / "out" / "export"
    summary = _export(server, dest)
    assert summary["documents"] == 5
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    jpeg_asset = next(f for f in files if f.startswith("reports/scan one.assets/"))
    assert files == sorted(
        [
            "reports/2024/example.md",
            *[f for f in files if f.startswith("reports/2024/example.assets/")],
            "reports/scan one.md",
            jpeg_asset,
            "misc/crazyones.md",
            "outside/evil.md",
            "tagged.md",
            "tagged.assets/ok.png",
        ]
    )
    assert "Beautiful is better" in (dest / "reports/2024/example.md").read_text()
    scan = (dest / "reports/scan one.md").read_text()
    assert "](scan%20one.assets/" in scan and jpeg_asset.rsplit("/", 1)[1] in scan
    assert "Russian" in (dest / "outside/evil.md").read_text()
    # Nothing escaped the destination.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["export"]
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.rglob("sneaky*"))
    assert any("skipped" in problem["reason"] for problem in summary["problems"])

    only_2024 = _export(server, tmp_path / "by-prefix", "--prefix", "reports/2024")
    assert only_2024["documents"] == 1 and (tmp_path / "by-prefix/reports/2024/example.md").is_file()
    only_misc = _export(server, tmp_path / "by-tag", "--tag", "misc")
    assert only_misc["documents"] == 1
    assert [p.name for p in (tmp_path / "by-tag").rglob("*.md")] == ["crazyones.md"]
