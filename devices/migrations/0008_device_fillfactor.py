"""Room on every page of devices_device for a new version of each of its rows.

A policy change raises `wanted_version` on all the devices it reaches, up to a whole tenant, in one
UPDATE. None of the columns it writes is indexed, so PostgreSQL can make every row's new version a
HOT update, on the same page and with no index entry, but only if the page has room for it. On full
pages each new version moves to another page and gets an entry in each of the table's 18 indexes
(four of them GIN trigram): measured with bench/policy_sync.py at 100,000 devices, 10 to 20 s per
bump at the default fillfactor, 0.6 to 1.4 s at 50. The price is a heap twice as large; the
indexes do not grow. Pages written before this migration keep their packing until the table is
rewritten (VACUUM FULL or pg_repack); SQLite has no fillfactor."""

from django.db import migrations


def set_fillfactor(value: int):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE devices_device SET (fillfactor = {value})")

    return run


class Migration(migrations.Migration):
    dependencies = [("devices", "0007_device_sync_pending_since")]

    operations = [migrations.RunPython(set_fillfactor(50), set_fillfactor(100), elidable=False)]
