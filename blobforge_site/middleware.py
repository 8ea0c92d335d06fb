"""Middleware for machine clients (workers, signed storage URLs): see ``blobforge_site.asgi``."""

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.middleware.security import SecurityMiddleware


class MachineMiddleware:
    """``SecurityMiddleware``'s redirect and headers plus ``Content-Length``, on the event loop.

    Under ASGI Django runs a sync-capable middleware's hooks in a worker thread, two
    thread hops per request. ``SecurityMiddleware``'s hooks only read settings and set
    headers, so they are called directly here; and ``Content-Length`` is set as
    ``CommonMiddleware`` would, so answers are not sent chunked (a 204 without it leaves a
    keep-alive client waiting for a body).
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.security = SecurityMiddleware(get_response)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.security.process_request(request) or await self.get_response(request)
        response = self.security.process_response(request, response)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response
