"""Unsealed read entries (ADR 0020): reads append to `PendingAuditEntry` without the chain head; the
sealer moves them into the chain and records where each came from (`AuditEntry.sealed_from`).

Adding a column rebuilds the entry table on SQLite, which drops its triggers: they are dropped
first and installed again afterwards, as migration 0005 did.
"""

from django.db import migrations, models

from medarchive.core import dbtriggers
from medarchive.security.guards import AUDIT_GUARDS, CHAIN_GUARDS, PENDING_GUARDS


def drop_guards(apps, schema_editor):
    dbtriggers.uninstall(schema_editor, AUDIT_GUARDS + CHAIN_GUARDS)


def install_guards(apps, schema_editor):
    dbtriggers.install(schema_editor, AUDIT_GUARDS + CHAIN_GUARDS + PENDING_GUARDS)


def uninstall_guards(apps, schema_editor):
    dbtriggers.uninstall(schema_editor, AUDIT_GUARDS + CHAIN_GUARDS + PENDING_GUARDS)


def reinstall_guards(apps, schema_editor):
    dbtriggers.install(schema_editor, AUDIT_GUARDS + CHAIN_GUARDS)


class Migration(migrations.Migration):
    dependencies = [("security", "0005_keyed_audit_chain")]
    operations = [
        migrations.RunPython(drop_guards, reinstall_guards),
        migrations.AddField(
            model_name="auditentry",
            name="sealed_from",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.CreateModel(
            name="PendingAuditEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField()),
                ("actor_id", models.BigIntegerField(null=True)),
                ("actor_name", models.CharField(max_length=150)),
                ("action", models.CharField(max_length=64)),
                ("object_type", models.CharField(blank=True, max_length=32)),
                ("object_id", models.CharField(blank=True, max_length=64)),
                ("result", models.CharField(max_length=16)),
                ("source", models.CharField(blank=True, max_length=64)),
                ("details", models.JSONField(default=dict)),
            ],
        ),
        migrations.RunPython(install_guards, uninstall_guards),
    ]
