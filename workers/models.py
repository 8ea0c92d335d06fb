"""Conversion workers: identity (name + hashed secret), operator switches, last heartbeat."""

from django.core.validators import validate_slug
from django.db import models


class Worker(models.Model):
    name = models.CharField(max_length=64, unique=True, validators=[validate_slug])
    secret_hash = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    draining = models.BooleanField(default=False)
    slots = models.PositiveSmallIntegerField(default=1, help_text="Jobs it may hold at once.")
    hostname = models.CharField(max_length=255, blank=True)
    version = models.CharField(max_length=64, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
