from django.urls import path, re_path

from live import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("live/jobs/<int:job_id>/retry", views.retry_job, name="live-retry"),
    re_path(r"^static/(?P<path>.+)$", views.static_file, name="static"),
]
