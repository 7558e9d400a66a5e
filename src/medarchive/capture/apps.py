from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "medarchive.capture"
    label = "capture"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from medarchive.capture.multipart import keep_client_file_names  # noqa: PLC0415 - models load first

        keep_client_file_names()
