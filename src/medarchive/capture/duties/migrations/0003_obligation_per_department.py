"""Obligations are unique per rule, department and subject key (was: per rule and subject key, so one
department's event returned, and could take over, another department's obligation)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("duties", "0002_default_rules"),
    ]

    operations = [
        # The old constraint is stricter: every existing row already satisfies the new one.
        migrations.AddConstraint(
            model_name="obligation",
            constraint=models.UniqueConstraint(
                fields=("rule", "department", "subject_key"), name="obligation_once_per_department_subject"
            ),
        ),
        migrations.RemoveConstraint(model_name="obligation", name="obligation_once_per_subject"),
    ]
