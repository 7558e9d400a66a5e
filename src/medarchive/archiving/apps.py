from django.apps import AppConfig


class ArchivingConfig(AppConfig):
    name = "medarchive.archiving"
    label = "archiving"
    default_auto_field = "django.db.models.BigAutoField"
