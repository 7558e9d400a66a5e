"""URLs of the duty and completeness pages (under /duties/)."""

from django.urls import URLPattern, path

from medarchive.capture.duties import views

urlpatterns: list[URLPattern] = [
    path("", views.dashboard, name="duties-dashboard"),
    path("department/<str:code>/", views.department, name="duties-department"),
    path("rules/", views.rule_list, name="duties-rules"),
    path("rules/<int:rule_id>/<str:op>/", views.rule_change, name="duties-rule-change"),
    path("notifications/", views.notification_list, name="duties-notifications"),
    path("notifications/read/", views.notification_read, name="duties-notification-read"),
]
