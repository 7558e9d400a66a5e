from django.apps import AppConfig


class PreservationConfig(AppConfig):
    name = "medarchive.preservation"
    label = "preservation"
    default_auto_field = "django.db.models.BigAutoField"
