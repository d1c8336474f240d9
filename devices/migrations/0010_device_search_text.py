"""One trigram index for the search box instead of four.

The search box matches display name, location, phone number and MAC digits; with a GIN trigram
index per field, every inserted device updated four GIN indexes, which made a 1,000,000-row CSV
import as slow as COPY into that table (about 60 s here). `search_text` holds the four fields,
upper case, one per line, and one index serves them all. PostgreSQL only, as in 0006."""

import django.db.models.functions.text
from django.db import migrations, models

OLD_INDEXES = {
    "device_display_name_trgm": "devices_device USING gin (UPPER(display_name) gin_trgm_ops)",
    "device_location_trgm": "devices_device USING gin (UPPER(location) gin_trgm_ops)",
    "device_phone_number_trgm": "devices_device USING gin (UPPER(phone_number) gin_trgm_ops)",
    "device_mac_hex_trgm": "devices_device USING gin (mac_hex gin_trgm_ops)",
}
NEW_INDEX = ("device_search_text_trgm", "devices_device USING gin (search_text gin_trgm_ops)")


def swap(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    name, definition = NEW_INDEX
    schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}")
    for old in OLD_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {old}")


def unswap(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for old, definition in OLD_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {old} ON {definition}")
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW_INDEX[0]}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("devices", "0009_drop_redundant_tenant_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="device",
            name="search_text",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.text.Upper(
                    django.db.models.functions.text.Concat(
                        "display_name", models.Value("\n"), "location", models.Value("\n"), "phone_number",
                        models.Value("\n"),
                        django.db.models.functions.text.Replace(models.F("mac"), models.Value("-"), models.Value("")),
                        output_field=models.TextField(),
                    )
                ),
                output_field=models.TextField(),
            ),
        ),
        migrations.RunPython(swap, unswap, elidable=False),
    ]
