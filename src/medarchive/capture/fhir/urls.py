"""URLs under /fhir/r4/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
