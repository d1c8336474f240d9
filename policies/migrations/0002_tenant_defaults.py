from django.db import migrations

from policies.choices import PolicyKind
from policies.schema import settings_default

DEFAULT_NAME = "Global (Org-wide default)"


def create_defaults(apps, schema_editor):
    """Every existing tenant gets a default policy of each kind (new tenants get theirs when created)."""
    Tenant = apps.get_model("portal", "Tenant")
    Policy = apps.get_model("policies", "Policy")
    Policy.objects.bulk_create(
        [
            Policy(tenant=tenant, kind=kind, name=DEFAULT_NAME, is_default=True, settings=settings_default(kind))
            for tenant in Tenant.objects.all()
            for kind in PolicyKind.values
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
