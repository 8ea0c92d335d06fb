"""ASGI entry point: HTTP (Django, behind a body-size guard) and websockets (Channels)."""

import json
import os
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blobforge_site.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from asgiref.sync import ThreadSensitiveContext  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

from live.routing import websocket_urlpatterns  # noqa: E402


class BodyLimit:
    """Refuse an oversized request from its Content-Length, before any byte is read or stored.

    Django would otherwise spool the whole body to disk before a view could say no.
    Storage uploads may be up to BLOBFORGE_MAX_UPLOAD_BYTES; API bodies up to 1 MiB.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            limit = None
            if path.startswith("/storage/"):
                limit = settings.MAX_UPLOAD_BYTES
            elif path.startswith("/api/"):
                limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if limit is not None:
                length = dict(scope.get("headers", [])).get(b"content-length")
                if length is not None and (not length.isdigit() or int(length) > limit):
                    return await self._refuse(send, f"request body larger than the {limit} bytes allowed here")
        return await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# Workers and signed storage URLs carry their credentials in headers or the URL; the
# browser middleware (sessions, CSRF, auth, messages, htmx, allauth) and CommonMiddleware's
# URL tidying do nothing for them, yet under ASGI each costs two thread hops per request
# (docs/benchmarks.md). They keep SecurityMiddleware's redirect and headers and Content-Length.
MACHINE_PATHS = ("/api/v1/worker/", "/storage/")
MACHINE_MIDDLEWARE = ["blobforge_site.middleware.MachineMiddleware"]


class MachineHandler(ASGIHandler):
    """Django with only the middleware that machine clients need, on threads it keeps.

    Django runs each request's sync code on a thread started for that request and joins
    it from yet another new thread afterwards; for a short protocol request the two thread
    starts cost about as much as the view (py-spy, docs/benchmarks.md). Here a request
    borrows a one-thread executor from a free list and gives it back, so a few threads
    serve every machine request, each still one request at a time as Django expects.
    """

    IDLE_THREADS = 16

    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send):
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, thread_name_prefix="machine-request")
        try:
            # Django's own ThreadSensitiveContext inside finds this one and uses its executor.
            async with ThreadSensitiveContext(executor=executor):
                await super().__call__(scope, receive, send)
        finally:
            if len(self._idle) < self.IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = MACHINE_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class ByPath:
    """Machine paths to the lean handler, everything else to full Django."""

    def __init__(self, machine, browser):
        self.machine, self.browser = machine, browser

    async def __call__(self, scope, receive, send):
        app = self.machine if scope.get("path", "").startswith(MACHINE_PATHS) else self.browser
        return await app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": BodyLimit(ByPath(MachineHandler(), django_application)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
