from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from blobforge_site.api import api, not_found
from blobforge_site.metrics import metrics_view
from jobs import views as job_views

urlpatterns = [
    path("healthz", job_views.healthz, name="healthz"),
    path("readyz", job_views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    re_path(r"^storage/(?P<key>[A-Za-z0-9_./-]+)$", job_views.storage_object, name="storage-object"),
    path("api/v1/", api.urls),
    path("api/schema/", RedirectView.as_view(url="/api/v1/openapi.json"), name="api-schema"),
    re_path(r"^api/", not_found),  # JSON, not Django's HTML page, for any unmatched API path
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("live.urls")),
]
