"""URL map: web UI, REST API under /api/v1/, health."""

from django.urls import include, path

from medarchive.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("fhir/r4/", include("medarchive.capture.fhir.urls")),
    path("", include("medarchive.web_urls")),
]
