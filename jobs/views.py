"""Plain views: health, and the local storage backend's signed GET/PUT endpoint."""

from django.db import connection
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from jobs import queue, storage
from jobs.models import Blob


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Process is up (no database or storage check; see /readyz)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Database and storage answer."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems["database"] = str(exc)[:200]
    try:
        storage.backend().size_of(storage.source_key("0" * 64))
    except Exception as exc:  # noqa: BLE001
        problems["storage"] = str(exc)[:200]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


@csrf_exempt
def storage_object(request: HttpRequest, key: str) -> HttpResponse:
    """Serve a URL signed by ``LocalStorage``: GET streams the file, PUT stores the body.

    A PUT is refused when it is larger than the signed size, when source bytes do not
    match their sha256, or (for outputs) when the lease it was issued under is gone.
    """
    backend = storage.backend()
    if not isinstance(backend, storage.LocalStorage):
        return _error("this server stores objects in S3; use the presigned URL it gave you", 404)
    if request.method not in ("GET", "HEAD", "PUT"):
        return _error("method not allowed", 405)
    method = "GET" if request.method == "HEAD" else request.method
    try:
        signed = backend.verify(method, key, request.GET)
        if method == "GET":
            path = backend.path(key)
            if not path.is_file():
                return _error("no such object", 404)
            return FileResponse(path.open("rb"), content_type="application/octet-stream")
        declared = request.headers.get("Content-Length")
        if declared is None:
            return _error("Content-Length is required", 411)
        if not declared.isdigit() or int(declared) > signed["max_size"]:
            return _error(f"body of {declared} bytes is larger than the {signed['max_size']} this URL allows", 413)
        if signed["lease"]:
            job_id, _, lease = signed["lease"].partition(":")
            if not job_id.isdigit() or not queue.lease_is_live(int(job_id), lease):
                return _error("the lease this URL was issued under is no longer valid", 409)
        written = backend.save(key, request, max_size=signed["max_size"], sha256=signed["sha256"] or None)
        if signed["sha256"]:
            Blob.objects.filter(sha256=signed["sha256"], size=written).update(stored=True)
        return JsonResponse({"key": key, "size": written}, status=201)
    except storage.StorageError as exc:
        return _error(exc.message, exc.status_code)
