from django.apps import AppConfig

from medarchive.capture.signals import intake_changed


class DutiesConfig(AppConfig):
    name = "medarchive.capture.duties"
    label = "duties"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from medarchive.capture.duties.handlers import on_intake_changed  # noqa: PLC0415 - models load first

        intake_changed.connect(on_intake_changed, dispatch_uid="duties.on_intake_changed")
