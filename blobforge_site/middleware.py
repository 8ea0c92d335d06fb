"""Middleware for machine clients (workers, signed storage URLs): see ``blobforge_site.asgi``."""

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.middleware.security import SecurityMiddleware


class MachineSecurityMiddleware:
    """``SecurityMiddleware``'s redirect and headers, run on the event loop.

    Under ASGI Django runs a sync-capable middleware's hooks in a worker thread, two
    thread hops per request. ``SecurityMiddleware``'s hooks only read settings and set
    headers, so calling them directly from async code is safe and saves both hops.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.security = SecurityMiddleware(get_response)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.security.process_request(request) or await self.get_response(request)
        return self.security.process_response(request, response)
