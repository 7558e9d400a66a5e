from django.db import migrations

from medarchive.archiving.guards import RECORD_GUARDS, RECORD_GUARDS_V2
from medarchive.core import dbtriggers


def forwards(apps, schema_editor):
    dbtriggers.uninstall(schema_editor, RECORD_GUARDS)
    dbtriggers.install(schema_editor, RECORD_GUARDS_V2)


def backwards(apps, schema_editor):
    dbtriggers.uninstall(schema_editor, RECORD_GUARDS_V2)
    dbtriggers.install(schema_editor, RECORD_GUARDS)


class Migration(migrations.Migration):
    dependencies = [("archiving", "0004_volume_archiving")]
    operations = [migrations.RunPython(forwards, backwards)]
