"""From a local file to its job on the server: hash it, then search jobs by the sha256."""

from blobforge_client.http import Client

RANK = {"done": 0, "running": 1, "pending": 2, "dead": 3, "cancelled": 4}


def job_for(client: Client, sha256: str, job_type: str = "pdf") -> dict | None:
    """The most useful job for these bytes (done first, then running, pending, dead; newest within each)."""
    page = client.call("GET", "jobs", params={"search": sha256, "type": job_type, "limit": 50})
    matches = [job for job in page["results"] if job["sha256"] == sha256]
    if not matches:
        return None
    return min(matches, key=lambda job: (RANK.get(job["status"], 9), -job["id"]))
