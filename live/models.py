"""Queue depth history for the dashboard: one row per minute, written by the broadcaster."""

from django.db import models


class QueueSample(models.Model):
    minute = models.DateTimeField(unique=True)
    pending = models.PositiveIntegerField()
    running = models.PositiveIntegerField()

    class Meta:
        ordering = ["minute"]

    def __str__(self) -> str:
        return f"{self.minute:%H:%M} pending={self.pending} running={self.running}"
