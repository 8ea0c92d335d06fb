"""Console for blobs, jobs and their events. Every job change goes through ``jobs.queue``."""

from django.conf import settings
from django.contrib import admin
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from jobs import queue
from jobs.models import Blob, BlobPath, Job, JobEvent, JobStatus
from live import preview
from live.admin_site import RoleAdmin, actor_of, confirm_action, report

PRIORITY_LABELS = {1: "1 critical", 2: "2 high", 3: "3 normal", 4: "4 low", 5: "5 background"}


def status_badge(status: str) -> str:
    return format_html('<span class="bf-badge bf-{}">{}</span>', status, status)


def progress_text(job: Job) -> str:
    if job.status != Job.Status.RUNNING:
        return ""
    pages = f" {job.pages_done or 0}/{job.pages_total}" if job.pages_total else ""
    return f"{job.stage or 'claimed'}{pages}"


class PriorityFilter(admin.SimpleListFilter):
    title = "priority"
    parameter_name = "priority"

    def lookups(self, request, model_admin):
        return [(str(k), v) for k, v in PRIORITY_LABELS.items()]

    def queryset(self, request, queryset):
        return queryset.filter(priority=int(self.value())) if self.value() in ("1", "2", "3", "4", "5") else queryset


class TypeFilter(admin.SimpleListFilter):
    """Choices from settings (a DISTINCT over the job table would scan it)."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(t, t) for t in settings.JOB_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


class ToStatusFilter(admin.SimpleListFilter):
    title = "to status"
    parameter_name = "to_status"

    def lookups(self, request, model_admin):
        return JobStatus.choices

    def queryset(self, request, queryset):
        return queryset.filter(to_status=self.value()) if self.value() else queryset


class JobEventInline(admin.TabularInline):
    model = JobEvent
    fields = ("created_at", "actor", "from_status", "to_status", "message")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-id",)
    verbose_name_plural = "event history (newest first)"
    classes = ("bf-events",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(Job)
class JobAdmin(RoleAdmin):
    list_display = ("id", "status_col", "priority", "filename", "type", "attempts_col", "worker", "progress_col", "age")
    list_display_links = ("id", "filename")
    list_filter = ("status", PriorityFilter, TypeFilter, "worker")
    list_select_related = ("worker",)
    list_per_page = 50
    ordering = ("-id",)
    search_help_text = "sha256 prefix, file name, or a path or tag the document was seen under"
    search_fields = ("filename",)  # the real search is get_search_results
    actions = ("retry_jobs", "cancel_jobs", "set_priority")
    inlines = (JobEventInline,)
    fieldsets = (
        (None, {"fields": ("status_col", "priority", "type", "filename", "blob_link", "downloads")}),
        ("Progress", {"fields": ("worker", "attempts_col", "stage", "pages_done", "pages_total", "lease_expires_at")}),
        ("Times", {"fields": ("created_at", "available_at", "started_at", "finished_at", "updated_at")}),
        ("Last error", {"fields": ("error_text",)}),
        ("Output", {"fields": ("output_key", "output_size", "output_sha256", "result", "preview")}),
    )
    readonly_fields = (
        "status_col",
        "priority",
        "type",
        "filename",
        "blob_link",
        "downloads",
        "worker",
        "attempts_col",
        "stage",
        "pages_done",
        "pages_total",
        "lease_expires_at",
        "created_at",
        "available_at",
        "started_at",
        "finished_at",
        "updated_at",
        "error_text",
        "output_key",
        "output_size",
        "output_sha256",
        "result",
        "preview",
    )

    # --- columns ---
    @admin.display(description="status", ordering="status")
    def status_col(self, job: Job) -> str:
        return status_badge(job.status)

    @admin.display(description="attempts")
    def attempts_col(self, job: Job) -> str:
        return f"{job.attempts}/{job.max_attempts}"

    @admin.display(description="progress")
    def progress_col(self, job: Job) -> str:
        return progress_text(job)

    @admin.display(description="age", ordering="created_at")
    def age(self, job: Job) -> str:
        return timesince(job.created_at, timezone.now(), depth=1)

    @admin.display(description="blob")
    def blob_link(self, job: Job) -> str:
        url = reverse("admin:jobs_blob_change", args=[job.blob_id])
        return format_html('<a href="{}"><code>{}</code></a>', url, job.blob_id)

    @admin.display(description="downloads")
    def downloads(self, job: Job) -> str:
        links = preview.download_links(job)
        return format_html_join(" · ", '<a href="{}">{}</a>', ((url, name) for name, url in links.items()))

    @admin.display(description="error")
    def error_text(self, job: Job) -> str:
        return format_html('<pre class="bf-error">{}</pre>', job.last_error) if job.last_error else "—"

    @admin.display(description="content.md preview")
    def preview(self, job: Job) -> str:
        return format_html('<div class="bf-preview">{}</div>', preview.markdown_preview(job))

    # --- search: sha256 prefix, file name, path or tag ---
    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(filename__icontains=term)
        if term.isdigit():
            match |= Q(pk=int(term))
        if len(term) >= 4 and all(c in "0123456789abcdef" for c in term.lower()):
            match |= Q(blob__sha256__startswith=term.lower())  # join trimmed: reads job.blob_id
        paths = BlobPath.objects.filter(Q(path__icontains=term) | Q(tags__icontains=term)).values("blob_id")
        return queryset.filter(match | Q(blob_id__in=paths)), False

    # --- actions: each runs the queue service per job and reports what it refused ---
    def _apply(self, request: HttpRequest, queryset: QuerySet, verb: str, change) -> None:
        done, refused = 0, []
        for job_id in queryset.values_list("id", flat=True).iterator():
            try:
                change(job_id)
                done += 1
            except queue.QueueError as exc:
                refused.append(exc.message)
        report(self, request, done, verb, refused)

    @admin.action(description="Retry selected dead or cancelled jobs", permissions=["operate"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet):
        actor = actor_of(request)
        return confirm_action(
            self,
            request,
            queryset,
            title="Retry jobs",
            verb="Retry",
            run=lambda qs: self._apply(request, qs, "Retried", lambda pk: queue.retry(pk, actor=actor)),
        )

    @admin.action(description="Cancel selected pending or running jobs", permissions=["operate"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet):
        actor = actor_of(request)
        reason = f"cancelled by {request.user.get_username()} in the console"
        return confirm_action(
            self,
            request,
            queryset,
            title="Cancel jobs",
            verb="Cancel",
            danger=True,
            run=lambda qs: self._apply(
                request, qs, "Cancelled", lambda pk: queue.cancel(pk, actor=actor, reason=reason)
            ),
        )

    @admin.action(description="Set priority of selected jobs", permissions=["operate"])
    def set_priority(self, request: HttpRequest, queryset: QuerySet):
        actor = actor_of(request)
        raw = request.POST.get("priority", "")

        def run(qs: QuerySet):
            if raw not in ("1", "2", "3", "4", "5"):
                self.message_user(request, "Choose a priority from 1 to 5.", level="error")
                return None
            return self._apply(request, qs, "Reprioritized", lambda pk: queue.reprioritize(pk, int(raw), actor=actor))

        return confirm_action(
            self,
            request,
            queryset,
            title="Set priority",
            verb="Set priority",
            run=run,
            extra_fields=[("priority", "New priority", [(str(k), v) for k, v in PRIORITY_LABELS.items()])],
        )


class BlobPathInline(admin.TabularInline):
    model = BlobPath
    fields = ("path", "tags", "seen_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return True


class BlobJobInline(admin.TabularInline):
    model = Job
    fields = ("id", "type", "status", "priority", "attempts", "finished_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    max_num = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(Blob)
class BlobAdmin(RoleAdmin):
    list_display = ("sha256", "first_path", "size", "content_type", "stored", "first_seen")
    list_filter = ("stored",)
    ordering = ("sha256",)  # the primary key: no sort over the whole table
    search_fields = ("^sha256", "paths__path")
    search_help_text = "sha256 prefix or part of a path"
    fields = ("sha256", "size", "content_type", "stored", "first_seen")
    readonly_fields = fields
    inlines = (BlobPathInline, BlobJobInline)

    def get_queryset(self, request):
        first = BlobPath.objects.filter(blob=OuterRef("pk")).order_by("id").values("path")[:1]
        return super().get_queryset(request).annotate(first_path_value=Subquery(first))

    @admin.display(description="path")
    def first_path(self, blob: Blob) -> str:
        return blob.first_path_value or "—"


@admin.register(JobEvent)
class JobEventAdmin(RoleAdmin):
    list_display = ("id", "created_at", "job_link", "actor", "from_status", "to_status", "message")
    list_filter = (ToStatusFilter,)
    list_per_page = 100
    ordering = ("-id",)
    search_fields = ("=job__id", "actor")
    search_help_text = "job id or actor (user:alice, worker:gpu-1, cli, system)"
    readonly_fields = ("job", "from_status", "to_status", "actor", "message", "created_at")

    @admin.display(description="job", ordering="job_id")
    def job_link(self, event: JobEvent) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:jobs_job_change", args=[event.job_id]), event.job_id)
