"""CSV import benchmark: generate a 1,000,000-row provisioning file and import it through
`devices.services.devices_import_csv`, the service behind the upload page and the API, with the
worker side run in this process (Celery in eager mode); import it again (every row already
onboarded); then COPY the same rows into an empty copy of the device table as the limit. Prints
wall time, rows/s and peak RSS.

Targets: 1M rows <= 30 s and <= 3x the COPY time; peak RSS <= 500 MB.

It runs in a database of its own (`bench_import` on the DATABASE_URL server), dropped, created and
migrated on every run, so the test database and dev data are untouched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/import_csv.py
    ... --rows 100000      a smaller run
"""

import argparse
import io
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAINTENANCE_DB = "postgres"
MODELS = ["T54W", "Yealink T57W", "VVX 450", "8841", "Cisco 8851", "C450HD", "D735", ""]
PLACES = ["HQ", "Lab", "Annex", "Store", "Depot", "Plant"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default="bench_import", help="the database this bench owns (dropped first)")
    parser.add_argument("--seed", type=int, default=3, help="random seed of the generated data")
    return parser.parse_args()


def use_fresh_database(name: str) -> None:
    """Point DATABASE_URL at a new, empty database of ours on the same server."""
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit("bench/import_csv.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path=f"/{MAINTENANCE_DB}")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))


def mac_spelling(n: int, rng: random.Random) -> str:
    """MACs as people type them: bare, colons, dashes, Cisco dots, any case."""
    digits = f"{0x00156500_0000 + n:012x}"
    style = rng.randrange(4)
    if style == 0:
        return digits.upper()
    if style == 1:
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    if style == 2:
        return "-".join(digits[i : i + 2] for i in range(0, 12, 2)).upper()
    return ".".join(digits[i : i + 4] for i in range(0, 12, 4))


def write_csv(path: Path, rows: int, seed: int) -> None:
    """The file a big customer would upload: header, CRLF, a few quoted fields, a trailing blank line."""
    rng = random.Random(seed)
    order = list(range(rows))
    rng.shuffle(order)  # rows not in MAC order, as a real inventory export is not
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("MAC id,Location,Display name,Model\r\n")
        batch = []
        for n in order:
            place = rng.choice(PLACES)
            location = f'"{place}, {n % 40}F"' if n % 10 == 0 else f"{place} {n % 40}F"
            batch.append(f"{mac_spelling(n, rng)},{location},Desk {n},{rng.choice(MODELS)}\r\n")
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch = []
        out.write("".join(batch) + "\r\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def copy_limit(rows: int, seed: int, tenant_id: int, *, by_mac: bool = False) -> float:
    """Seconds to COPY the same rows, in the file's order (canonical values, defaults filled), into
    an empty copy of the device table: its indexes, fillfactor and foreign keys, committed. What
    the database alone needs to take these rows. `by_mac`: in MAC order, as the import writes them."""
    from django.db import connection, transaction
    from django.utils import timezone

    from devices.catalog import device_model_catalog
    from devices.imports import _device_insert
    from devices.models import Device

    rng = random.Random(seed)
    order = list(range(rows))
    rng.shuffle(order)
    catalog = device_model_catalog()
    lines = []
    columns, expressions, values = _device_insert(tenant_id=tenant_id, now=timezone.now(), connection=connection)
    # Per column: the index of a staged value, or the fixed default the import writes.
    staged = {"s.mac": 0, "s.location": 1, "s.display_name": 2, "s.model_id": 3}
    defaults = iter(values)
    template = [(staged[e], None) if e in staged else (None, next(defaults)) for e in expressions]

    def text(value) -> str:
        return r"\N" if value is None else str(value).replace("\\", "\\\\").replace("\t", "\\t")

    payload = io.StringIO()
    for n in order:
        place = rng.choice(PLACES)
        location = f"{place}, {n % 40}F" if n % 10 == 0 else f"{place} {n % 40}F"
        mac_spelling(n, rng)  # keep the random stream in step with write_csv
        model = rng.choice(MODELS)
        digits = f"{0x00156500_0000 + n:012X}"
        row = ("-".join(digits[i : i + 2] for i in range(0, 12, 2)), location, f"Desk {n}",
               catalog.get(model.lower()) if model else None)
        lines.append((row[0], "\t".join(text(row[index] if index is not None else value) for index, value in template)))
    if by_mac:
        lines.sort()
    for _, line in lines:
        payload.write(line)
        payload.write("\n")
    del lines
    data = payload.getvalue().encode()
    del payload
    table = Device._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE relname = %s", [table])
        options = cursor.fetchone()[0]
        cursor.execute("DROP TABLE IF EXISTS bench_device_copy")
        cursor.execute(
            f'CREATE TABLE bench_device_copy (LIKE "{table}" INCLUDING ALL)' + (f" WITH ({options})" if options else "")
        )
        # LIKE copies no foreign keys: add the device table's own.
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        for (definition,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE bench_device_copy ADD {definition}")
        cursor.execute("CHECKPOINT")
        started = time.perf_counter()
        with transaction.atomic(), cursor.copy(f"COPY bench_device_copy ({', '.join(columns)}) FROM STDIN") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start : start + (1 << 20)])
        elapsed = time.perf_counter() - started
        cursor.execute("SELECT COUNT(*) FROM bench_device_copy")
        assert cursor.fetchone()[0] == rows
        cursor.execute("DROP TABLE bench_device_copy")
    return elapsed


def main():
    args = parse_args()
    use_fresh_database(args.database)
    # The worker side runs here: delay_on_commit runs the task in this process when the job commits.
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from devices.models import Device, ImportJob
    from devices.services import devices_import_csv
    from portal.celery import app  # noqa: F401 - binds shared tasks to the eager app
    from portal.models import User
    from portal.services import Actor, tenant_create

    tenant_id = tenant_create(name="Bench", admin_email="bench@example.com")["tenant"]
    admin = User.objects.get(username="bench@example.com")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        started = time.perf_counter()
        write_csv(path, args.rows, args.seed)
        print(f"generated {args.rows:,} rows, {path.stat().st_size / 1024 / 1024:.1f} MB in "
              f"{time.perf_counter() - started:.1f} s")
        data = path.read_bytes()

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # as before the COPY below: neither pays for what came before it
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    job = devices_import_csv(
        tenant=admin.membership.tenant, actor=Actor.of_user(admin), file_name="bench.csv", data=data
    )
    elapsed = time.perf_counter() - started
    rss_peak = peak_rss_mb()
    job = ImportJob.objects.get(pk=job.pk)
    devices = Device.objects.filter(tenant_id=tenant_id).count()
    print(f"import: status {job.status}, {job.created_count:,} created, {job.unchanged_count:,} unchanged, "
          f"{job.error_count:,} errors; {devices:,} devices in the tenant")
    if job.errors:
        print(f"  first error: {job.errors[0]}")
    print(f"import: {elapsed:.2f} s wall, {args.rows / elapsed:,.0f} rows/s, "
          f"peak RSS {rss_peak:.0f} MB (before the import {rss_before:.0f} MB)")

    # The same file again: every row already onboarded, so the import takes the checked path.
    started = time.perf_counter()
    again = devices_import_csv(
        tenant=admin.membership.tenant, actor=Actor.of_user(admin), file_name="bench.csv", data=data
    )
    again_seconds = time.perf_counter() - started
    del data
    again = ImportJob.objects.get(pk=again.pk)
    print(f"re-upload of the same file: status {again.status}, {again.created_count:,} created, "
          f"{again.unchanged_count:,} unchanged in {again_seconds:.2f} s")

    copy_seconds = copy_limit(args.rows, args.seed, tenant_id)
    print(f"COPY into an empty copy of the device table: {copy_seconds:.2f} s, {args.rows / copy_seconds:,.0f} rows/s")
    sorted_seconds = copy_limit(args.rows, args.seed, tenant_id, by_mac=True)
    print(f"  the same rows in MAC order: {sorted_seconds:.2f} s, {args.rows / sorted_seconds:,.0f} rows/s")
    ratio = elapsed / copy_seconds
    print(f"import / COPY: {ratio:.2f}x")
    checks = [
        ("status done, every row created", job.status == "done" and job.created_count == args.rows == devices),
        ("re-upload done, every row unchanged", again.status == "done" and again.unchanged_count == args.rows),
        ("wall time <= 30 s", elapsed <= 30),
        ("<= 3x the COPY time", ratio <= 3),
        ("peak RSS <= 500 MB", rss_peak <= 500),
    ]
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    sys.exit(0 if all(ok for _, ok in checks) else 1)


if __name__ == "__main__":
    main()
