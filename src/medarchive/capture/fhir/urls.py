"""URLs under /fhir/r4/ (FHIR R4 RESTful API: type and instance level, the base for transactions)."""

from django.urls import URLPattern, path

from medarchive.capture.fhir import views

urlpatterns: list[URLPattern] = [
    path("", views.base, name="fhir-base"),
    path("metadata", views.metadata, name="fhir-metadata"),
    path("DocumentReference", views.document_reference_type, name="fhir-documentreference"),
    path("DocumentReference/<str:resource_id>", views.document_reference_instance, name="fhir-documentreference-read"),
    path("Binary", views.binary_type, name="fhir-binary"),
    path("Binary/<str:resource_id>", views.binary_instance, name="fhir-binary-read"),
    # Anything else under the base answers as FHIR does: an OperationOutcome, not an HTML page.
    path("<str:resource_type>", views.unknown),
    path("<str:resource_type>/", views.unknown),
    path("<str:resource_type>/<path:rest>", views.unknown),
]
