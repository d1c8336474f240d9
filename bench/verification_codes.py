"""Verification code benchmark: generate codes for 100,000 devices waiting on activation through
the same service the UI and the API call (`verification_codes_issue`), then regenerate them all,
generate for a 1,000-device selection, load one inventory page of codes, check codes the way the
SIP edge will, and sweep them all once expired. Target: 100,000 codes generated in <= 5 s.

It runs in a database of its own (`bench_codes` on the DATABASE_URL server, created and migrated
here), so the test database and dev data are untouched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CACHE_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/verification_codes.py [--devices 100000]
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAINTENANCE_DB = "postgres"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--selection", type=int, default=1_000, help="devices in the 'selected' run")
    parser.add_argument("--checks", type=int, default=1_000, help="codes checked, as phones dialling *55*")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of generating and regenerating")
    parser.add_argument("--database", default="bench_codes", help="the database this bench owns")
    return parser.parse_args()


def use_bench_database(name: str) -> None:
    """Point DATABASE_URL at our own database on the same server, creating it when missing."""
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit("bench/verification_codes.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path=f"/{MAINTENANCE_DB}")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))


def mac(n: int) -> str:
    digits = f"02BE{n:08X}"
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


def timed(label: str, work, *, count: int | None = None, unit: str = "codes"):
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    rate = f"  ({count / elapsed:,.0f} {unit}/s)" if count else ""
    print(f"{label:<52} {elapsed:8.3f} s{rate}", flush=True)
    return result, elapsed


def main() -> None:
    args = parse_args()
    use_bench_database(args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from devices.choices import DeviceState
    from devices.models import Device
    from enrollment.models import VerificationCode
    from enrollment.selectors import live_code, verification_codes_load
    from enrollment.services import (
        verification_code_check,
        verification_codes_issue,
        verification_codes_sweep,
    )
    from portal.models import AuditEvent, Tenant
    from portal.services import Actor

    call_command("migrate", verbosity=0)
    print(f"database {connection.settings_dict['NAME']}, cache {django.conf.settings.CACHES['default']['BACKEND']}")
    Tenant.objects.filter(name="Bench codes").delete()
    tenant = Tenant.objects.create(name="Bench codes")
    actor = Actor.system("bench")

    def seed():
        Device.objects.bulk_create(
            (
                Device(tenant=tenant, mac=mac(i), location=f"Floor {i % 40}", state=DeviceState.WAITING_ON_ACTIVATION)
                for i in range(args.devices)
            ),
            batch_size=5000,
        )

    timed(f"seed {args.devices:,} devices (not the measure)", seed)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    waiting = DeviceState.WAITING_ON_ACTIVATION
    firsts, seconds = [], []
    for run in range(1, args.runs + 1):
        VerificationCode.objects.filter(tenant=tenant).delete()
        issued, elapsed = timed(
            f"run {run}: generate {args.devices:,} codes (state=waiting)",
            lambda: verification_codes_issue(tenant=tenant, actor=actor, state=waiting),
            count=args.devices,
        )
        assert len(issued) == args.devices
        firsts.append(elapsed)
        _, elapsed = timed(
            f"run {run}: regenerate all {args.devices:,} (revokes old ones)",
            lambda: verification_codes_issue(tenant=tenant, actor=actor, state=waiting),
            count=args.devices,
        )
        seconds.append(elapsed)
    ids = list(Device.objects.filter(tenant=tenant).order_by("?").values_list("pk", flat=True)[: args.selection])
    timed(
        f"generate for a selection of {len(ids):,} ids",
        lambda: verification_codes_issue(tenant=tenant, actor=actor, ids=ids),
        count=len(ids),
    )

    live = VerificationCode.objects.filter(tenant=tenant, ciphertext__isnull=False)
    distinct = live.values("digest").distinct().count()
    audited = AuditEvent.objects.filter(tenant=tenant, action="verification_code.issue").count()
    print(f"live codes {live.count():,}, distinct {distinct:,}; generation audit rows {audited:,}")
    assert distinct == args.devices

    page = list(Device.objects.filter(tenant=tenant).order_by("-created_at", "-id")[:50])
    samples = []
    for _ in range(50):
        for device in page:
            device._prefetched_objects_cache = {}
            device._state.fields_cache.pop("verification_code", None)
        start = time.perf_counter()
        verification_codes_load(tenant=tenant, devices=page)
        assert all(live_code(d).code for d in page)  # decrypt, as the template does
        samples.append(time.perf_counter() - start)
    samples.sort()
    label = "load + decrypt the codes of a 50-device page (p50/p95)"
    print(f"{label:<52} {samples[25] * 1000:6.2f} / {samples[47] * 1000:.2f} ms")

    sample = Device.objects.filter(tenant=tenant).select_related("verification_code")[: args.checks]
    codes = {d.pk: live_code(d).code for d in sample}
    macs = dict(Device.objects.filter(pk__in=codes).values_list("pk", "mac"))

    def check_all():
        for n, (pk, code) in enumerate(codes.items()):
            source = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            result = verification_code_check(mac_or_device=macs[pk], code=code, source=source)
            assert result.ok, result

    timed(f"check {len(codes):,} right codes, one by one (enrolls them)", check_all, count=len(codes), unit="checks")

    later = timezone.now() + timezone.timedelta(hours=25)
    swept, _ = timed("sweep every code once expired", lambda: verification_codes_sweep(now=later))
    print(f"swept {swept:,}")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB")
    best, best_again = min(firsts), min(seconds)
    verdict = "OK" if best <= 5 else "OVER"
    print(
        f"target: {args.devices:,} codes generated <= 5 s: "
        f"best {best:.2f} s (regenerating {best_again:.2f} s) -> {verdict}"
    )
    Tenant.objects.filter(pk=tenant.pk).delete()


if __name__ == "__main__":
    main()
