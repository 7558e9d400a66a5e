from django.db import migrations

from medarchive.core import dbtriggers
from medarchive.security.guards import AUDIT_GUARDS


def forwards(apps, schema_editor):
    dbtriggers.install(schema_editor, AUDIT_GUARDS)


def backwards(apps, schema_editor):
    dbtriggers.uninstall(schema_editor, AUDIT_GUARDS)


class Migration(migrations.Migration):
    dependencies = [("security", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
