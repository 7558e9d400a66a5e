"""Install the shipped duty rules (data/default-rules.json); rules already present by name are kept."""

from typing import Any

from django.db import migrations


def install(apps: Any, schema_editor: Any) -> None:
    from medarchive.capture.duties.services import install_defaults  # noqa: PLC0415 - app code loads after the registry

    install_defaults(apps.get_model("duties", "DutyRule"))


class Migration(migrations.Migration):
    dependencies = [("duties", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
