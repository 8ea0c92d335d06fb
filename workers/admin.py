"""Console for workers. Every write goes through ``workers.actions``; a new secret is shown once."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from jobs.admin import progress_text, status_badge
from jobs.models import Job, JobStatus
from live.admin_site import RoleAdmin, actor_of, confirm_action, report, shown_once
from workers import actions
from workers.models import Worker


class WorkerAddForm(forms.ModelForm):
    class Meta:
        model = Worker
        fields = ("name", "slots")
        help_texts = {"name": "Letters, digits, - and _. The worker machine sends it as BLOBFORGE_WORKER_ID."}


def secrets_page(admin_: "WorkerAdmin", request: HttpRequest, issued: list[tuple[Worker, str]]) -> HttpResponse:
    """The worker's environment, secret included: shown on this page only, never again."""
    items = [
        (
            worker.name,
            f"BLOBFORGE_SERVER_URL={settings.PUBLIC_URL}\n"
            f"BLOBFORGE_WORKER_ID={worker.name}\n"
            f"BLOBFORGE_WORKER_SECRET={secret}",
        )
        for worker, secret in issued
    ]
    return shown_once(
        admin_,
        request,
        title="Worker secret" if len(issued) == 1 else "Worker secrets",
        items=items,
        note="Paste these into the worker machine's environment. The secret is stored hashed and is never shown "
        "again; if it is lost, regenerate it.",
    )


@admin.register(Worker)
class WorkerAdmin(RoleAdmin):
    list_display = (
        "name",
        "status_col",
        "current_job",
        "jobs_done",
        "pages_per_hour",
        "last_seen",
        "hostname",
        "version",
        "slots",
    )
    list_filter = ("enabled", "draining")
    search_fields = ("name", "hostname")
    actions = ("drain", "undrain", "enable", "disable", "regenerate_secret", "remove")
    view_fields = (
        "name",
        "status_col",
        "current_job",
        "jobs_done",
        "pages_per_hour",
        "enabled",
        "draining",
        "slots",
        "hostname",
        "version",
        "capabilities",
        "registered_at",
        "last_seen",
        "created_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        hour_ago = timezone.now() - timedelta(hours=1)
        running = Job.objects.filter(status=JobStatus.RUNNING).order_by("started_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                done_count=Count("jobs", filter=Q(jobs__status=JobStatus.DONE)),
                pages_last_hour=Sum(
                    "jobs__pages_done", filter=Q(jobs__status=JobStatus.DONE, jobs__finished_at__gte=hour_ago)
                ),
            )
            .prefetch_related(Prefetch("jobs", queryset=running, to_attr="running_jobs"))
        )

    # --- add: the form takes a name; the secret comes from workers.actions and is shown once ---
    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_administer_permission(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = WorkerAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return WorkerAddForm.Meta.fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.view_fields

    def save_model(self, request: HttpRequest, obj: Worker, form, change: bool) -> None:
        worker, secret = actions.create(form.cleaned_data["name"], slots=form.cleaned_data["slots"])
        obj.pk, obj.secret_hash = worker.pk, worker.secret_hash
        request._issued_worker_secrets = [(worker, secret)]

    def response_add(self, request: HttpRequest, obj: Worker, post_url_continue=None) -> HttpResponse:
        return secrets_page(self, request, request._issued_worker_secrets)

    # --- columns ---
    @admin.display(description="status")
    def status_col(self, worker: Worker) -> str:
        return status_badge(actions.status(worker, settings.WORKER_OFFLINE_SECONDS))

    @admin.display(description="current job")
    def current_job(self, worker: Worker) -> str:
        jobs = getattr(worker, "running_jobs", None)
        if jobs is None:  # the detail page
            jobs = list(worker.jobs.filter(status=JobStatus.RUNNING))
        return ", ".join(f"#{job.pk} {job.filename} ({progress_text(job)})" for job in jobs) or "—"

    @admin.display(description="jobs done", ordering="done_count")
    def jobs_done(self, worker: Worker) -> int:
        return getattr(worker, "done_count", 0)

    @admin.display(description="pages/hour")
    def pages_per_hour(self, worker: Worker) -> int:
        return getattr(worker, "pages_last_hour", None) or 0

    # --- actions ---
    def _each(self, request: HttpRequest, queryset: QuerySet, verb: str, change) -> None:
        workers = list(queryset)
        for worker in workers:
            change(worker)
        report(self, request, len(workers), verb, [])

    @admin.action(description="Drain: finish the current job, take no new one", permissions=["operate"])
    def drain(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "Draining", lambda w: actions.set_draining(w, True))

    @admin.action(description="Undrain: take jobs again", permissions=["operate"])
    def undrain(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "Undrained", lambda w: actions.set_draining(w, False))

    @admin.action(description="Enable", permissions=["administer"])
    def enable(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = actor_of(request)
        self._each(request, queryset, "Enabled", lambda w: actions.set_enabled(w, True, actor=actor))

    @admin.action(description="Disable: secret stops working, held jobs go back", permissions=["administer"])
    def disable(self, request: HttpRequest, queryset: QuerySet):
        actor = actor_of(request)
        return confirm_action(
            self,
            request,
            queryset,
            title="Disable workers",
            verb="Disable",
            danger=True,
            run=lambda qs: self._each(request, qs, "Disabled", lambda w: actions.set_enabled(w, False, actor=actor)),
        )

    @admin.action(description="Regenerate secret (the old one stops working)", permissions=["administer"])
    def regenerate_secret(self, request: HttpRequest, queryset: QuerySet):
        actor = actor_of(request)

        def run(qs: QuerySet) -> HttpResponse:
            return secrets_page(self, request, [(w, actions.regenerate_secret(w, actor=actor)) for w in qs])

        return confirm_action(
            self, request, queryset, title="Regenerate worker secrets", verb="Regenerate", danger=True, run=run
        )

    @admin.action(description="Remove (held jobs go back to the queue)", permissions=["administer"])
    def remove(self, request: HttpRequest, queryset: QuerySet):
        actor = actor_of(request)
        return confirm_action(
            self,
            request,
            queryset,
            title="Remove workers",
            verb="Remove",
            danger=True,
            run=lambda qs: self._each(request, qs, "Removed", lambda w: actions.remove(w, actor=actor)),
        )
