from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LiveConfig(AppConfig):
    default = True
    name = "live"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with BlobForge's role-based site as ``admin.site``."""

    default = False
    default_site = "live.admin_site.ConsoleAdminSite"
