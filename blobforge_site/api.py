"""The one NinjaAPI that serves both JSON APIs under ``/api/v1/`` and their OpenAPI schema.

Every error is JSON ``{"detail": "…"}`` with a 4xx status: validation problems are 422,
unparseable bodies 400, refused state changes 409, missing things 404.
"""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from jobs.queue import QueueError
from jobs.storage import StorageError

api = NinjaAPI(
    title="BlobForge API",
    version="1",
    description=(
        "Worker protocol under `/api/v1/worker/` (headers `X-Worker-ID` + `X-Worker-Secret`) and the "
        "client API under `/api/v1/` (`Authorization: Bearer bf_…` with scopes read, submit, operate, admin)."
    ),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def _detail(request: HttpRequest, message, status: int) -> HttpResponse:
    return api.create_response(request, {"detail": message}, status=status)


@api.exception_handler(QueueError)
def queue_error(request: HttpRequest, exc: QueueError) -> HttpResponse:
    return _detail(request, exc.message, exc.status_code)


@api.exception_handler(StorageError)
def storage_error(request: HttpRequest, exc: StorageError) -> HttpResponse:
    return _detail(request, exc.message, exc.status_code)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = []
    for error in exc.errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "payload"))
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return _detail(request, "; ".join(problems) or "invalid request", 422)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if message == "Cannot parse request body":
        message = "request body is not valid JSON"
    return _detail(request, message, exc.status_code)


@csrf_exempt  # a POST to no endpoint is a 404, not a CSRF failure page
def not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Paths under ``/api/`` that no route matches (``/api/v1/jobs/abc``): JSON like every other API error."""
    return _detail(request, f"no API endpoint at {request.path}", 404)


def register_routers() -> None:
    from jobs.api import router as client_router
    from workers.api import router as worker_router

    api.add_router("/worker/", worker_router)
    api.add_router("/", client_router)


register_routers()
