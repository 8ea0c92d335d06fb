"""Hostile clients over real HTTP, beyond what the protocol, storage and identity tests already refuse.

* Every browser form the site serves refuses a POST without its CSRF token: the forms are
  found by crawling the pages an admin sees (dashboard, token page, the whole admin), so a
  new form is covered without anyone listing it here.
* A worker's output upload URL is bound to its job: pointed at another job's output key it
  is refused, after its lease is gone it is refused, and it takes no more than the size
  asked for.
"""

import hashlib
import re
from html import unescape
from urllib.parse import urljoin, urlsplit, urlunsplit

import pytest
import requests

from tests.identity_people import create_people, local_sign_in
from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

FORM_RE = re.compile(r"<form\b[^>]*>", re.IGNORECASE)
ATTR_RE = re.compile(r'([\w-]+)\s*=\s*"([^"]*)"')
LINK_RE = re.compile(r'href="(/admin/[^"#]*)"')
HX_POST_RE = re.compile(r'hx-post="([^"]+)"')


def post_targets(page_url: str, html: str) -> set[str]:
    """Absolute URLs that forms (``method=post``) and htmx buttons (``hx-post``) on the page post to."""
    targets = set()
    for tag in FORM_RE.findall(html):
        attrs = {k.lower(): unescape(v) for k, v in ATTR_RE.findall(tag)}
        if attrs.get("method", "get").lower() == "post":
            targets.add(urljoin(page_url, attrs.get("action", "")))
    targets.update(urljoin(page_url, unescape(url)) for url in HX_POST_RE.findall(html))
    return targets


def crawl_post_targets(browser: requests.Session, base: str, start: list[str], max_pages: int = 80) -> set[str]:
    """GET the start pages and the admin pages they link to (two levels); collect every POST target."""
    seen, targets, queue = set(), set(), [(path, 0) for path in start]
    while queue and len(seen) < max_pages:
        path, depth = queue.pop(0)
        if path in seen or "logout" in path or "/delete/" in path:
            continue
        seen.add(path)
        page = browser.get(base + path, timeout=30)
        assert page.status_code == 200, f"{path}: {page.status_code}"
        targets |= post_targets(base + path, page.text)
        if depth < 2:
            queue += [(unescape(link), depth + 1) for link in LINK_RE.findall(page.text)]
    return targets


@pytest.fixture
def site(server):
    """An admin, a dead job (so retry buttons show), a worker and a token of the admin's own."""
    create_people(server, adam="admin")
    (server.data_dir / "doc.pdf").write_bytes(tiny_pdf(1))
    server.manage("submit", str(server.data_dir / "doc.pdf"))
    server.manage("workers", "create", "w-one")
    server.shell(
        "from jobs import queue; from workers.models import Worker;"
        "job, lease = queue.claim(Worker.objects.get(name='w-one'), ['pdf']);"
        "queue.fail(Worker.objects.get(name='w-one'), job.pk, lease.token, error='corrupt', retryable=False)"
    )
    browser = local_sign_in(server, "adam")
    page = browser.get(server.base_url + "/accounts/tokens/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    made = browser.post(
        server.base_url + "/accounts/tokens/",
        data={"name": "mine", "scopes": ["read"], "csrfmiddlewaretoken": csrf},
        headers={"Referer": server.base_url + "/accounts/tokens/"},
    )
    assert made.status_code == 201
    return server, browser


def test_every_browser_form_refuses_a_post_without_its_csrf_token(site):
    server, browser = site
    targets = crawl_post_targets(browser, server.base_url, ["/", "/accounts/tokens/", "/admin/"])
    targets |= {server.base_url + "/live/jobs/1/retry"}  # the dashboard's retry button (rendered live)
    paths = {urlsplit(t).path for t in targets}
    for expected in ["/accounts/logout/", "/accounts/tokens/", "/admin/jobs/job/", "/admin/workers/worker/"]:
        assert expected in paths, f"the crawl found no form posting to {expected}: {sorted(paths)}"
    assert any(re.fullmatch(r"/accounts/tokens/\d+/revoke/", p) for p in paths), sorted(paths)
    assert len(targets) >= 10, sorted(targets)

    for target in sorted(targets):
        # Same origin (Referer and Origin are right): only the missing token is wrong.
        forged = browser.post(
            target,
            data={"action": "retry_jobs", "_selected_action": "1", "name": "forged", "scopes": ["read"]},
            headers={"Referer": server.base_url + "/", "Origin": server.base_url},
            allow_redirects=False,
        )
        assert forged.status_code == 403 and "CSRF" in forged.text, f"{target}: {forged.status_code}"

    anonymous = requests.post(
        server.base_url + "/accounts/login/",
        data={"login": "adam", "password": "anything"},
        headers={"Referer": server.base_url + "/accounts/login/"},
    )
    assert anonymous.status_code == 403 and "CSRF" in anonymous.text

    # Nothing the forged posts asked for happened, and the session still works.
    assert server.manage_json("jobs", "--status", "dead")["jobs"][0]["id"] == 1
    assert "mine" in browser.get(server.base_url + "/accounts/tokens/").text
    assert "forged" not in browser.get(server.base_url + "/accounts/tokens/").text
    # The same retry with the token the page carries is accepted: the refusals above were CSRF, not rights.
    dashboard = browser.get(server.base_url + "/")
    csrf = re.search(r'"X-CSRFToken": "([^"]+)"', dashboard.text).group(1)
    accepted = browser.post(
        server.base_url + "/live/jobs/1/retry", headers={"X-CSRFToken": csrf, "Referer": server.base_url + "/"}
    )
    assert accepted.status_code == 200, accepted.text


@pytest.fixture(params=["local", "s3"])
def any_server(request):
    return request.getfixturevalue("server" if request.param == "local" else "s3_server")


def two_claimed_jobs(server) -> tuple[ProtocolWorker, object, ProtocolWorker, object]:
    for n in (1, 2):
        path = server.data_dir / f"doc-{n}.pdf"
        path.write_bytes(tiny_pdf(n))
        server.manage("submit", str(path))
    alice = ProtocolWorker(server.base_url, *server.create_worker("alice"))
    bob = ProtocolWorker(server.base_url, *server.create_worker("bob"))
    return alice, alice.claim(), bob, bob.claim()


def upload_spec(worker: ProtocolWorker, job, size: int) -> dict:
    response = worker.post(f"jobs/{job.id}/upload-url", {"lease": job.lease, "size": size})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_output_url_cannot_write_another_jobs_output(any_server):
    alice, alices_job, bob, bobs_job = two_claimed_jobs(any_server)
    data = tiny_output_zip("# not yours\n")
    spec = upload_spec(alice, alices_job, len(data))
    alice_sha, bob_sha = (job.body["job"]["source"]["sha256"] for job in (alices_job, bobs_job))
    parts = urlsplit(spec["url"])
    assert alice_sha in parts.path
    retargeted = urlunsplit(parts._replace(path=parts.path.replace(alice_sha, bob_sha)))

    refused = requests.put(retargeted, data=data, headers=spec["headers"], timeout=30)

    assert refused.status_code == 403, refused.text
    declared = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    completed = bob.post(f"jobs/{bobs_job.id}/complete", {"lease": bobs_job.lease, "output": declared})
    assert completed.status_code == 422, "bob's output key must still be empty"


def test_an_output_url_takes_no_more_than_the_size_asked_for(any_server):
    alice, job, _, _ = two_claimed_jobs(any_server)
    data = tiny_output_zip()
    spec = upload_spec(alice, job, len(data))
    bigger = requests.put(spec["url"], data=data + b"padding", headers=spec["headers"], timeout=30)
    assert bigger.status_code in (400, 403, 413), bigger.text

    def chunked():
        yield data

    # No Content-Length at all (chunked): refused rather than streamed without a limit.
    unbounded = requests.put(spec["url"], data=chunked(), headers=spec["headers"], timeout=30)
    assert unbounded.status_code in (400, 403, 411, 413, 501), unbounded.text
    declared = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert alice.post(f"jobs/{job.id}/complete", {"lease": job.lease, "output": declared}).status_code == 422


def test_an_output_url_dies_with_its_lease(server):
    """Local storage binds the URL to the lease: a worker that lost its job cannot overwrite the output."""
    alice, job, _, _ = two_claimed_jobs(server)
    data = tiny_output_zip()
    spec = upload_spec(alice, job, len(data))
    assert alice.post(f"jobs/{job.id}/release", {"lease": job.lease}).status_code == 200

    late = requests.put(spec["url"], data=data, headers=spec["headers"], timeout=30)

    assert late.status_code == 409 and "lease" in late.json()["detail"]
    assert not list((server.data_dir / "storage").rglob("*.zip")), "nothing was stored"
