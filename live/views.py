"""The live dashboard page, its retry button, and static files (served by the app itself, DEBUG or not)."""

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles.views import serve
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import can_operate, can_view
from jobs import queue
from live import snapshot


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if not can_view(request.user):
        return render(request, "live/no_role.html", status=403)
    context = {"snap": snapshot.cached(), "can_operate": can_operate(request.user)}
    return render(request, "live/dashboard.html", context)


@require_POST
@login_required
def retry_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """The failures panel's retry button (htmx POST with the CSRF header); answers with a flash message."""
    if not can_operate(request.user):
        return render(request, "live/partials/flash.html", {"message": "Only operators may retry jobs."}, status=403)
    try:
        queue.retry(job_id, actor=f"user:{request.user.get_username()}")
        message, ok = f"Job {job_id} is queued again.", True
    except queue.QueueError as exc:
        message, ok = exc.message, False
    return render(request, "live/partials/flash.html", {"message": message, "ok": ok}, status=200 if ok else 409)


@require_GET
def static_file(request: HttpRequest, path: str) -> HttpResponse:
    """/static/ from the app and project static folders (no collectstatic step, no second server).

    Django calls this view "insecure" only because it is not built for heavy traffic; the
    console's few small files are fine, and it keeps ``daphne`` alone enough to serve them.
    """
    response = serve(request, path, insecure=True)
    response["Cache-Control"] = "public, max-age=300"
    return response
