"""Fewer indexes on devices_device: each is written by every onboarded device, and a 1,000,000-row
CSV import paid about a second for each (bench/import_csv.py).

- The MAC's uniqueness becomes a constraint: `unique=True` on a CharField also built a
  varchar_pattern_ops index for LIKE 'prefix%', which no query uses (the search box has its
  trigram index).
- The per-state list index carries registration_expires_at, so it also counts the summary cards
  from the index alone and device_tenant_state_online goes.
- signed_in_user is indexed only where it is set; model_id not at all (the catalog keeps the models
  in use, so nothing looks devices up by model alone).

New indexes and the new constraint come first, so the MAC stays unique throughout."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0010_device_search_text"),
        ("portal", "0002_drop_redundant_tenant_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="device",
            constraint=models.UniqueConstraint(fields=("mac",), name="device_mac_unique"),
        ),
        migrations.AddIndex(
            model_name="device",
            index=models.Index(
                fields=["tenant", "state", "-created_at", "-id"],
                include=("registration_expires_at",),
                name="device_tenant_state_listed",
            ),
        ),
        migrations.AddIndex(
            model_name="device",
            index=models.Index(
                condition=models.Q(("signed_in_user__isnull", False)),
                fields=["signed_in_user"],
                name="device_signed_in_user",
            ),
        ),
        migrations.RemoveIndex(model_name="device", name="device_tenant_state_created"),
        migrations.RemoveIndex(model_name="device", name="device_tenant_state_online"),
        migrations.AlterField(model_name="device", name="mac", field=models.CharField(max_length=17)),
        migrations.AlterField(
            model_name="device",
            name="model",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="devices.devicemodel",
            ),
        ),
        migrations.AlterField(
            model_name="device",
            name="signed_in_user",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="devices",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
