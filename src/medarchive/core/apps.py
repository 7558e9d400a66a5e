from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "medarchive.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from medarchive.core import refcache  # noqa: PLC0415 - models load first
        from medarchive.core.models import Department, Fonds  # noqa: PLC0415

        refcache.invalidate_on_change(Fonds, Department)
