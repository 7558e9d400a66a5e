"""The keyed audit chain (ADR 0013): a key id per entry, the switch-over sequence on the head,
and triggers that guard the head.

Existing entries are not touched: they keep their unkeyed seals and stay verifiable by the old
rule up to `keyed_from` = the head's seq + 1, the first entry the new code seals with the audit
key. A database whose head row is missing while entries exist keeps it missing: re-creating it
here would hide the tampering.
"""

from django.db import migrations, models

from medarchive.core import dbtriggers
from medarchive.security.guards import AUDIT_GUARDS, CHAIN_GUARDS

GENESIS = "0" * 64


def drop_old_guards(apps, schema_editor):
    # Adding a column rebuilds the table on SQLite, which drops its triggers: re-installed below.
    dbtriggers.uninstall(schema_editor, AUDIT_GUARDS)


def set_switch_over(apps, schema_editor):
    head = schema_editor.connection.ops.quote_name("security_audithead")
    entries = schema_editor.connection.ops.quote_name("security_auditentry")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"UPDATE {head} SET keyed_from = seq + 1 WHERE id = 1")  # noqa: S608
        cursor.execute(f"SELECT COUNT(*) FROM {head}")  # noqa: S608
        has_head = cursor.fetchone()[0] > 0
        cursor.execute(f"SELECT COUNT(*) FROM {entries}")  # noqa: S608
        has_entries = cursor.fetchone()[0] > 0
        if not has_head and not has_entries:
            cursor.execute(
                f"INSERT INTO {head} (id, seq, entry_hash, keyed_from) VALUES (1, 0, %s, 1)",  # noqa: S608
                [GENESIS],
            )


def install_guards(apps, schema_editor):
    dbtriggers.install(schema_editor, AUDIT_GUARDS + CHAIN_GUARDS)


def uninstall_guards(apps, schema_editor):
    dbtriggers.uninstall(schema_editor, AUDIT_GUARDS + CHAIN_GUARDS)


def reinstall_old_guards(apps, schema_editor):
    dbtriggers.install(schema_editor, AUDIT_GUARDS)


class Migration(migrations.Migration):
    dependencies = [("security", "0004_interface_role")]
    operations = [
        migrations.RunPython(drop_old_guards, reinstall_old_guards),
        migrations.AddField(
            model_name="auditentry",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddField(
            model_name="audithead",
            name="keyed_from",
            field=models.BigIntegerField(default=1),
        ),
        migrations.RunPython(set_switch_over, migrations.RunPython.noop),
        migrations.RunPython(install_guards, uninstall_guards),
    ]
