from django.apps import AppConfig


class ArchivingConfig(AppConfig):
    name = "medarchive.archiving"
    label = "archiving"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from medarchive.archiving.models import (  # noqa: PLC0415 - models load first
            ArchiveClass,
            ClassificationScheme,
            RetentionRule,
            RetentionTable,
        )
        from medarchive.core import refcache  # noqa: PLC0415

        refcache.invalidate_on_change(ClassificationScheme, ArchiveClass, RetentionTable, RetentionRule)
