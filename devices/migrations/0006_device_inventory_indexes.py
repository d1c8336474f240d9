"""Indexes measured with bench/inventory.py at 1,000,000 devices.

The PostgreSQL-only ones are SQL run only there (SQLite, `make run`'s database, has no pg_trgm and
no NULLS FIRST in an index), built CONCURRENTLY so that a live inventory keeps taking writes while
they build; hence a non-atomic migration."""

from django.db import migrations, models

POSTGRESQL_INDEXES = {
    # The search box (`q`): icontains is UPPER(column) LIKE UPPER('%value%'); a MAC fragment is
    # mac_hex LIKE '%HEX%'. The username one serves the same box through the signed-in user.
    "device_display_name_trgm": "devices_device USING gin (UPPER(display_name) gin_trgm_ops)",
    "device_location_trgm": "devices_device USING gin (UPPER(location) gin_trgm_ops)",
    "device_phone_number_trgm": "devices_device USING gin (UPPER(phone_number) gin_trgm_ops)",
    "device_mac_hex_trgm": "devices_device USING gin (mac_hex gin_trgm_ops)",
    "user_username_trgm": "portal_user USING gin (UPPER(username) gin_trgm_ops)",
    # `sort=-last_seen` is `last_seen_at DESC NULLS LAST, id DESC`: this index read backwards
    # (device_tenant_last_seen serves the ascending sort; a previous page reads each the other way).
    "device_tenant_last_seen_nulls_first": "devices_device (tenant_id, last_seen_at NULLS FIRST, id)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in POSTGRESQL_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in POSTGRESQL_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("devices", "0005_import_jobs"),
        ("portal", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="device",
            index=models.Index(fields=["tenant", "state", "registration_expires_at"], name="device_tenant_state_online"),
        ),
        migrations.RunPython(create, drop, elidable=False),
    ]
