"""URLs of the duty and completeness pages (under /duties/)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
