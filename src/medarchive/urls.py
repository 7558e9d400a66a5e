"""URL map: web UI, REST API under /api/v1/, health."""

from django.urls import include, path

from medarchive.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("fhir/r4/", include("medarchive.capture.fhir.urls")),
    path("", include("medarchive.web_urls")),
]

# Error pages in the app's layout and the user's language (medarchive/web/errors.py).
handler400 = "medarchive.web.errors.bad_request"
handler403 = "medarchive.web.errors.permission_denied"
handler404 = "medarchive.web.errors.page_not_found"
handler500 = "medarchive.web.errors.server_error"
