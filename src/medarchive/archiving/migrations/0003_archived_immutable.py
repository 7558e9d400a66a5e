from django.db import migrations

from medarchive.archiving.guards import RECORD_GUARDS
from medarchive.core import dbtriggers


def forwards(apps, schema_editor):
    dbtriggers.install(schema_editor, RECORD_GUARDS)


def backwards(apps, schema_editor):
    dbtriggers.uninstall(schema_editor, RECORD_GUARDS)


class Migration(migrations.Migration):
    dependencies = [("archiving", "0002_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
