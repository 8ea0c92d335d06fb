"""The domain: content-addressed blobs, conversion jobs and their append-only history.

Rows here are read by anyone but written only through ``jobs.queue`` (and
``jobs.ingest`` for blobs), so every change of a job leaves a ``JobEvent``.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Blob(models.Model):
    """A source document, keyed by the sha256 of its bytes."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=100, default="application/pdf")
    stored = models.BooleanField(default=False, help_text="Its bytes are in object storage.")
    first_seen = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256[:12]

    @property
    def filename(self) -> str:
        first = self.paths.order_by("id").first()
        return first.path.rsplit("/", 1)[-1] if first else f"{self.sha256}.pdf"


class BlobPath(models.Model):
    """A path a blob was seen at, with the tags derived from its folders."""

    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="paths")
    path = models.CharField(max_length=1024)
    tags = models.JSONField(default=list)
    seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blob", "path"], name="blobpath_unique")]
        indexes = [models.Index(fields=["path"])]

    def __str__(self) -> str:
        return self.path


class JobStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"
    CANCELLED = "cancelled"


class Job(models.Model):
    """One conversion of one blob. ``claim_rank`` orders claims: see ``jobs.queue.claim_rank``."""

    Status = JobStatus

    type = models.CharField(max_length=32, default="pdf")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="jobs")
    filename = models.CharField(max_length=255, blank=True)
    forced = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    priority = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(5)])
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    available_at = models.DateTimeField()
    claim_rank = models.FloatField(db_index=False)
    lease_token = models.CharField(max_length=64, null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.ForeignKey("workers.Worker", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    stage = models.CharField(max_length=32, blank=True)
    pages_done = models.PositiveIntegerField(null=True, blank=True)
    pages_total = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    output_key = models.CharField(max_length=512, blank=True)
    output_size = models.BigIntegerField(null=True, blank=True)
    output_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["blob", "type"], condition=models.Q(forced=False), name="job_one_per_blob_type"
            ),
            models.CheckConstraint(condition=models.Q(priority__gte=1, priority__lte=5), name="job_priority_1_5"),
        ]
        indexes = [
            # Claim: pending jobs of a type, best rank first.
            models.Index(fields=["status", "type", "claim_rank", "id"], name="job_claim_idx"),
            # Reaper: running jobs whose lease ran out.
            models.Index(fields=["status", "lease_expires_at"], name="job_lease_idx"),
            models.Index(fields=["status", "priority"], name="job_status_priority_idx"),
            models.Index(fields=["worker", "status"], name="job_worker_status_idx"),
            models.Index(fields=["finished_at"], name="job_finished_idx"),
            # Dashboard: the latest failures (dead jobs, newest first).
            models.Index(fields=["status", "-finished_at"], name="job_status_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"


class JobEvent(models.Model):
    """Append-only history of a job; also the outbox the live broadcaster tails."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.CharField(max_length=150)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.job_id}: {self.from_status or '∅'} → {self.to_status}"
