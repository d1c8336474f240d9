"""Inventory benchmark: seed N devices across tenants in PostgreSQL, then time the inventory.

Server-side p50/p95 (Django's test Client in-process: no network, no browser) for the HTML list and
the REST API — first page, a deep page reached by following the `next` cursor, a MAC fragment
search, state filters with a sort — and, as the anchor, the same list through Django admin's
changelist, which pages with COUNT + OFFSET. Targets: every p95 <= 50 ms and seeding <= 60 s at
1,000,000 devices.

It runs in a database of its own (`bench_inventory` on the DATABASE_URL server, created and
migrated here), so the test database and dev data are untouched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/inventory.py
    ... --devices 100000 --samples 20      a smaller run
    ... --reuse                            keep the seeded data when it matches --devices/--tenants
"""

import argparse
import html
import io
import math
import os
import random
import re
import resource
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAINTENANCE_DB = "postgres"


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1_000_000, help="devices to seed")
    parser.add_argument("--tenants", type=int, default=100, help="tenants they belong to")
    parser.add_argument("--samples", type=int, default=50, help="timed requests per scenario")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per scenario first")
    parser.add_argument("--depth", type=int, default=100, help="`next` links followed to reach the deep page")
    parser.add_argument("--reuse", action="store_true", help="skip seeding when the data is there")
    parser.add_argument("--tenant", choices=["median", "largest"], default="median", help="whose inventory to time")
    parser.add_argument("--database", default="bench_inventory", help="the database this bench owns")
    parser.add_argument("--seed", type=int, default=2, help="random seed of the generated data")
    return parser.parse_args()


def use_bench_database(name: str) -> None:
    """Point DATABASE_URL at our own database on the same server, creating it when missing."""
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(
            "bench/inventory.py measures PostgreSQL, what production runs on: set DATABASE_URL=postgres://… "
            f"(got {parts.scheme or 'nothing'}; SQLite is only the embedded default of `make run`)."
        )
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path=f"/{MAINTENANCE_DB}")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))


# --- generated data ----------------------------------------------------------------------------

COMPANIES = [
    "Contoso", "Fabrikam", "Northwind Traders", "Adventure Works", "Tailspin Toys", "Wide World Importers",
    "Litware", "Proseware", "Woodgrove Bank", "Alpine Ski House", "Coho Winery", "Fourth Coffee",
    "Humongous Insurance", "Lamna Healthcare", "Margie's Travel", "Relecloud", "Trey Research", "VanArsdel",
    "Wingtip Toys", "Blue Yonder Airlines", "City Power & Light", "Graphic Design Institute", "Lucerne Publishing",
    "Southridge Video", "Datum Corporation",
]
DIVISIONS = ["", " Europe", " Americas", " Asia Pacific"]
CITIES = {
    "noam": ["Seattle", "Redmond", "Chicago", "Toronto", "Austin", "New York", "Denver", "Atlanta"],
    "emea": ["London", "Dublin", "Paris", "Munich", "Amsterdam", "Madrid", "Stockholm", "Dubai"],
    "apac": ["Sydney", "Singapore", "Tokyo", "Melbourne", "Auckland", "Mumbai", "Seoul", "Hong Kong"],
}
DIALING = {"noam": "+1 425 555", "emea": "+44 20 7946", "apac": "+61 2 9374"}
FIRST = [
    "Megan", "Alex", "Adele", "Diego", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni", "Lee", "Lidia",
    "Lynne", "Miriam", "Nestor", "Patti", "Pradeep", "Emily", "Enrico", "Christie", "Irvin", "Allan", "Debra",
    "Ben", "Cameron", "Lola", "Zrinka", "Raul", "Sanjay", "Amber", "Omar", "Yuki", "Ingrid", "Kofi", "Lucia",
    "Mateo", "Priya", "Chen", "Fatima", "Noah", "Olga", "Hana", "Tomas", "Aisha", "Liam", "Sofia", "Arjun",
    "Mei", "Jonas", "Elena", "Kwame",
]
LAST = [
    "Bowen", "Wilber", "Vance", "Siciliani", "Archie", "Cerveny", "Langer", "Lauer", "Sherman", "Gu",
    "Holloway", "Robbins", "Graham", "Wilke", "Fernandez", "Kohli", "Contoso", "Cline", "Bellew", "Caldwell",
    "Ezekiel", "Nordstrom", "Fontana", "Tate", "Hughes", "Okafor", "Silva", "Tanaka", "Novak", "Haddad",
    "Kowalski", "Jensen", "Murphy", "Dubois", "Rossi", "Ivanova", "Moreau", "Schmidt", "Nakamura", "Patel",
    "Larsen", "Costa",
]
COMMON_AREAS = ["Reception", "Lobby", "Kitchen", "Break room", "Front desk", "Security desk", "Mail room",
                "Loading dock", "Conference room", "Boardroom", "Huddle room", "Training room", "Help desk"]
VENDOR_SHARE = {"Yealink": 35, "Poly": 25, "Cisco": 20, "AudioCodes": 12, "Snom": 5, "Gigaset": 3}
OUIS = {
    "Yealink": ["80-5E-C0", "24-9A-D8", "44-DB-D2"], "Poly": ["00-04-F2", "64-16-7F", "48-25-67"],
    "Cisco": ["70-1F-53", "CC-5A-53", "68-3B-78"], "AudioCodes": ["00-90-8F"], "Snom": ["00-04-13"],
    "Gigaset": ["7C-2F-80", "00-01-E3"],
}
STATES = ["waiting_on_activation", "waiting_for_sign_in", "signed_in"]
STATE_WEIGHTS = [15, 25, 60]


def tenant_sizes(devices: int, tenants: int) -> list[int]:
    """Log-normal tenant sizes (a few large, most middling, some small) that add up to `devices`."""
    normal = statistics.NormalDist()
    weights = [math.exp(0.8 * normal.inv_cdf((i + 0.5) / tenants)) for i in range(tenants)]
    sizes = [int(devices * w / sum(weights)) for w in weights]
    sizes[-1] += devices - sum(sizes)
    return sizes


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


class TimestampText:
    """Text of a UTC timestamp given as seconds before `now`, cheaply: the hour part is cached."""

    def __init__(self, now: datetime):
        self.epoch = int(now.timestamp())
        self.hours: dict[int, str] = {}

    def __call__(self, seconds_ago: float) -> str:
        at = self.epoch - int(seconds_ago)
        hour, rest = divmod(at, 3600)
        prefix = self.hours.get(hour)
        if prefix is None:
            prefix = self.hours[hour] = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%d %H:")
        return f"{prefix}{rest // 60:02d}:{rest % 60:02d}+00"


def copy_rows(cursor, table: str, columns: list[str], lines) -> None:
    """COPY text lines (tab separated, `\\N` for NULL; the generated values contain no tab,
    newline or backslash) in chunks of about a megabyte."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FREEZE)"
    with cursor.copy(statement) as copy:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            if buffer.tell() > 1 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


class Deferred:
    """Drop a table's secondary indexes and foreign keys for a bulk load and build them again
    after, in the same transaction: one sort per index and one join per key beat a million
    per-row index inserts and trigger checks (what pg_restore does)."""

    def __init__(self, cursor, tables: list[str]):
        self.cursor, self.tables, self.indexes, self.keys = cursor, tables, [], []

    def __enter__(self):
        for table in self.tables:
            self.cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f'",
                [table],
            )
            for name, definition in self.cursor.fetchall():
                self.cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                self.keys.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            self.cursor.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = %s::regclass "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                [table],
            )
            for name, definition in self.cursor.fetchall():
                self.cursor.execute(f"DROP INDEX {name}")
                self.indexes.append(definition)
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            for statement in self.indexes + self.keys:
                start = time.perf_counter()
                self.cursor.execute(statement)
                if os.environ.get("BENCH_VERBOSE"):
                    print(f"    {time.perf_counter() - start:5.1f} s  {statement[:110]}", flush=True)


def seed(*, devices: int, tenants: int, rng: random.Random) -> dict[str, float]:
    """Replace all tenants, users and devices with generated ones; the seconds of each phase."""
    from django.db import connection, transaction

    from devices.models import DeviceModel

    now = datetime.now(UTC)
    at = TimestampText(now)
    catalog: dict[str, list[DeviceModel]] = {}
    for model in DeviceModel.objects.order_by("id"):
        catalog.setdefault(model.vendor, []).append(model)
    if set(catalog) != set(VENDOR_SHARE):
        sys.exit(f"the device catalog has vendors {sorted(catalog)}; the bench expects {sorted(VENDOR_SHARE)}")
    vendors = list(VENDOR_SHARE)
    # Within a vendor a few models sell most: weight the n-th model 1/(n+1).
    models_of = {v: [(m.pk, m.vendor, m.model, m.min_firmware) for m in catalog[v]] for v in vendors}
    model_weights = {v: [1 / (n + 1) for n in range(len(catalog[v]))] for v in vendors}
    mac_pools = {
        v: iter(rng.sample(range(len(OUIS[v]) << 24), math.ceil(devices * VENDOR_SHARE[v] / 100) + 1000))
        for v in vendors
    }

    sizes = tenant_sizes(devices, tenants)
    rng.shuffle(sizes)
    regions = [rng.choices(["noam", "emea", "apac"], [5, 3, 2])[0] for _ in range(tenants)]
    names = [f"{COMPANIES[i % len(COMPANIES)]}{DIVISIONS[i // len(COMPANIES) % len(DIVISIONS)]}"
             + (f" {i // (len(COMPANIES) * len(DIVISIONS)) + 1}" if i >= len(COMPANIES) * len(DIVISIONS) else "")
             for i in range(tenants)]
    domains = [re.sub(r"[^a-z0-9]+", "", n.lower()) + ".example" for n in names]

    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        phases[phase], clock = time.perf_counter() - clock, time.perf_counter()

    with transaction.atomic(), connection.cursor() as cursor:
        # Index builds sort in memory; GIN ones build several times faster with room.
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        # FREEZE needs the tables emptied in this transaction; frozen rows are all-visible at once,
        # so index-only scans work without waiting for a VACUUM.
        cursor.execute("TRUNCATE portal_tenant, portal_user, django_session RESTART IDENTITY CASCADE")
        with Deferred(cursor, ["portal_user", "portal_membership", "devices_device"]):
            tenant_columns = ["id", "name", "region", "sip_gateway_enabled", "provisioning_key", "created_at"]
            copy_rows(cursor, "portal_tenant", tenant_columns, (
                f"{t + 1}\t{names[t]}\t{regions[t]}\tt\t{secrets.token_urlsafe(24)}\t{at(rng.uniform(800, 1500) * DAY)}"
                "\n"
                for t in range(tenants)
            ))
            users: list[str] = []
            memberships: list[str] = []
            device_lines = _device_lines(
                devices=devices, sizes=sizes, regions=regions, domains=domains, rng=rng, at=at,
                vendors=vendors, models_of=models_of, model_weights=model_weights, mac_pools=mac_pools,
                users=users, memberships=memberships,
            )
            copy_rows(cursor, "devices_device", DEVICE_COLUMNS, device_lines)
            copy_rows(
                cursor, "portal_user",
                ["id", "password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff",
                 "is_active", "date_joined", "phone_number"],
                users,
            )
            copy_rows(cursor, "portal_membership", ["id", "user_id", "tenant_id", "role"], memberships)
            for table in ("portal_tenant", "portal_user", "portal_membership", "devices_device"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
            lap("COPY")
        lap("indexes and keys")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    lap("ANALYZE")
    return phases


DEVICE_COLUMNS = [
    "id", "tenant_id", "mac", "display_name", "location", "model_id", "firmware", "state", "signed_in_user_id",
    "phone_number", "contact_uri", "transport", "source_address", "user_agent", "registration_expires_at",
    "last_seen_at", "last_provisioned_at", "last_provisioned_ip", "last_provisioned_user_agent",
    "wanted_version", "synced_version", "created_at", "updated_at",
]
DAY = 86400
NULL = "\\N"


def _device_lines(*, devices, sizes, regions, domains, rng, at, vendors, models_of, model_weights, mac_pools,
                  users, memberships):
    """Device rows, oldest first (ids follow onboarding time, as they do in production); users and
    memberships of the signed-in ones are appended to `users` and `memberships` on the way."""
    random_, choices = rng.random, rng.choices

    def randrange(start: int, stop: int | None = None) -> int:
        # random.randrange checks its arguments at a cost that dominated generating a row.
        return int(random_() * start) if stop is None else start + int(random_() * (stop - start))

    # Models drawn by weight from a pre-drawn sample: a choices() call per row was as slow.
    model_bags = {v: choices(models_of[v], model_weights[v], k=4096) for v in vendors}
    # Each device's tenant, drawn so that tenants onboard phones all along the two years.
    owners = [t for t, size in enumerate(sizes) for _ in range(size)]
    rng.shuffle(owners)
    sites = [
        [f"{city} / {building} / Floor {floor}" for city in rng.sample(CITIES[regions[t]], rng.randint(1, 4))
         for building in rng.sample(["HQ", "Building 1", "Building 2", "Building 3", "Annex", "Tower A"],
                                    rng.randint(1, 3))
         for floor in range(1, rng.randint(2, 8))]
        for t in range(len(sizes))
    ]
    user_id = 0
    span = 730 * DAY

    def common_area() -> str:
        return f"{COMMON_AREAS[randrange(len(COMMON_AREAS))]} {randrange(1, 40)}"

    vendor_picks = choices(vendors, [VENDOR_SHARE[v] for v in vendors], k=devices)
    state_picks = choices(STATES, STATE_WEIGHTS, k=devices)
    for i in range(devices):
        t = owners[i]
        vendor = vendor_picks[i]
        state = state_picks[i]
        created_ago = span * (1 - (i + random_()) / devices)
        digits = next(mac_pools[vendor])
        oui = OUIS[vendor][digits >> 24]
        low = digits & 0xFFFFFF
        mac = f"{oui}-{low >> 16:02X}-{(low >> 8) & 0xFF:02X}-{low & 0xFF:02X}"
        model_id, _, model_name, firmware = model_bags[vendor][int(random_() * 4096)]
        location = sites[t][randrange(len(sites[t]))]
        ip = f"10.{t}.{randrange(256)}.{randrange(1, 255)}"
        user_agent = f"{vendor} {model_name} {firmware}"
        wanted = randrange(1, 6)
        synced = wanted if random_() < 0.95 else wanted - 1
        user, phone, name = "\\N", "", ""
        registered = provisioned = seen = None
        if state == "waiting_on_activation":
            # Onboarded by MAC alone: often no model yet, never registered, sometimes fetched a config.
            if random_() < 0.4:
                model_id, firmware, user_agent = "\\N", "", ""
            else:
                firmware = ""
            if random_() < 0.3:
                provisioned = created_ago * random_()
            if random_() < 0.3:
                name = common_area()
        else:
            provisioned = created_ago * random_() * 0.2
            online = random_() < (0.85 if state == "signed_in" else 0.6)
            if online:
                registered = randrange(60, 3600)
                seen = randrange(0, 900)
            else:
                # Offline: hours to weeks; some past the 14- and 30-day auto-offboarding horizons.
                seen = min(created_ago, DAY * rng.expovariate(1 / 5))
            if state == "signed_in":
                user_id += 1
                user = str(user_id)
                first, last = FIRST[randrange(len(FIRST))], LAST[randrange(len(LAST))]
                phone = f"{DIALING[regions[t]]} {randrange(10000):04d}"
                email = f"{first.lower()}.{last.lower()}.{user_id}@{domains[t]}"
                users.append(
                    f"{user_id}\t!\tf\t{email}\t{first}\t{last}\t{email}\tf\tt\t{at(created_ago)}\t{phone}\n"
                )
                memberships.append(f"{user_id}\t{user_id}\t{t + 1}\tuser\n")
                name = common_area() if random_() < 0.15 else f"{first} {last}"
            elif random_() < 0.5:
                name = common_area()
        if registered is not None:
            port = randrange(1024, 65535)
            transport = "tls" if random_() < 0.5 else "udp"
            registration = (
                f"sip:{mac.replace('-', '').lower()}@{ip}:{port};transport={transport}\t{transport}\t"
                f"{ip}:{port}\t{user_agent}\t{at(-registered)}"
            )
        else:
            registration = "\t\t\t\t\\N"
        provisioning = f"{at(provisioned)}\t{ip}\t{user_agent}" if provisioned is not None else "\\N\t\\N\t"
        updated_ago = seen if seen is not None else created_ago * random_()
        yield (
            f"{i + 1}\t{t + 1}\t{mac}\t{name}\t{location}\t{model_id}\t{firmware}\t{state}\t{user}\t{phone}\t"
            f"{registration}\t{at(seen) if seen is not None else NULL}\t{provisioning}\t{wanted}\t{synced}\t"
            f"{at(created_ago)}\t{at(updated_ago)}\n"
        )


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process and of its PostgreSQL backend (-1 if that one is not ours to read)."""
    from django.db import connection

    usage = resource.getrusage(resource.RUSAGE_SELF)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        backend = -1.0
    return usage.ru_utime + usage.ru_stime, backend


# --- measuring ---------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest rank."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


class Bench:
    """Scenarios are timed in rounds, one request of each per round, so that a burst of load from
    elsewhere on the machine lands on all of them alike instead of on whichever ran then."""

    def __init__(self):
        self.scenarios: list[tuple[str, object, str]] = []

    def add(self, name: str, client, url: str) -> None:
        self.scenarios.append((name, client, url))

    def run(self, *, samples: int, warmup: int) -> list[tuple]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        queries = []
        for _, client, url in self.scenarios:
            for _ in range(warmup):
                self._get(client, url)
            with CaptureQueriesContext(connection) as captured:
                self._get(client, url)
            queries.append(len(captured))  # now: the next request clears the log it reads
        times: list[list[float]] = [[] for _ in self.scenarios]
        for _ in range(samples):
            for n, (_, client, url) in enumerate(self.scenarios):
                start = time.perf_counter()
                self._get(client, url)
                times[n].append((time.perf_counter() - start) * 1000)
        rows = []
        for (name, _, url), samples_ms, count in zip(self.scenarios, times, queries, strict=True):
            samples_ms.sort()
            rows.append((name, percentile(samples_ms, 0.5), percentile(samples_ms, 0.95), count, url))
        return rows

    @staticmethod
    def _get(client, url: str):
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        return response


def table(rows: list[tuple]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'scenario':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}  {'queries':>7}  url"]
    for name, p50, p95, queries, url in rows:
        flag = "" if p95 <= 50 else "  > 50 ms"
        lines.append(f"{name:<{width}}  {p50:8.1f}  {p95:8.1f}  {queries:>7}  {url}{flag}")
    return "\n".join(lines)


NEXT_LINK = re.compile(r'<a class="button" href="([^"]*)"[^>]*>Next')


def follow_html(client, url: str, times: int) -> tuple[str, int]:
    followed = 0
    while followed < times:
        match = NEXT_LINK.search(client.get(url).content.decode())
        if not match:
            break
        url, followed = "/devices/" + html.unescape(match.group(1)), followed + 1
    return url, followed


def follow_api(client, url: str, times: int) -> tuple[str, int]:
    followed = 0
    while followed < times:
        link = client.get(url).json()["next"]
        if not link:
            break
        url, followed = link.removeprefix("http://testserver"), followed + 1
    return url, followed


def main() -> None:
    args = parse_args()
    use_bench_database(args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Count
    from django.test import Client

    from devices.models import Device
    from portal.choices import Role
    from portal.models import ApiToken, Tenant, User
    from portal.services import api_token_create, user_create

    print(f"database {settings.DATABASES['default']['NAME']} on {settings.DATABASES['default']['HOST']}", flush=True)
    call_command("migrate", verbosity=0)

    seeded = Tenant.objects.count() == args.tenants and Device.objects.count() == args.devices
    if args.reuse and seeded:
        print(f"reusing {args.devices:,} devices across {args.tenants} tenants (no seeding)")
    else:
        print(f"seeding {args.devices:,} devices across {args.tenants} tenants …", flush=True)
        cpu = cpu_seconds()
        phases = seed(devices=args.devices, tenants=args.tenants, rng=random.Random(args.seed))
        cpu = [after - before for before, after in zip(cpu, cpu_seconds(), strict=True)]
        detail = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items())
        print(f"seeded in {sum(phases.values()):.1f} s ({detail}); load average {os.getloadavg()[0]:.1f}")
        # What a busy machine cannot stretch: the work itself (index builds' parallel workers aside).
        print(f"  CPU: this process {cpu[0]:.1f} s, its PostgreSQL session " + (
            f"{cpu[1]:.1f} s" if cpu[1] >= 0 else "unknown (server not on this machine)"))

    # The tenant in the middle by size is what a typical admin sees; the largest, the worst case.
    by_size = list(Tenant.objects.annotate(n=Count("devices")).order_by("n", "id").values_list("id", "n"))
    tenant_id, tenant_devices = by_size[-1 if args.tenant == "largest" else len(by_size) // 2]
    tenant = Tenant.objects.get(pk=tenant_id)
    print(f"tenant {tenant.name!r}: {tenant_devices:,} devices (sizes {by_size[0][1]:,} … {by_size[-1][1]:,})")

    email = f"bench-admin@{tenant.pk}.bench.example"
    admin = User.objects.filter(username=email).first() or user_create(tenant=tenant, email=email, role=Role.ADMIN)
    ApiToken.objects.filter(user=admin, name="bench/inventory.py").delete()  # one per run would pile up
    _, key = api_token_create(user=admin, name="bench/inventory.py")
    superuser = User.objects.filter(username="bench-superuser").first() or User.objects.create_superuser(
        "bench-superuser", "bench-superuser@bench.example", None
    )
    browser = Client()
    browser.force_login(admin)
    api = Client(headers={"authorization": f"Token {key}"})
    operator = Client()
    operator.force_login(superuser)

    mac = Device.objects.filter(tenant=tenant).order_by("id")[tenant_devices // 2].mac
    fragment = mac.replace("-", "")[-4:].lower()  # what a technician reads off the label
    deep_html, html_depth = follow_html(browser, "/devices/", args.depth)
    deep_api, api_depth = follow_api(api, "/api/v1/devices/", args.depth)
    page_size = settings.INVENTORY_PAGE_SIZE
    admin_page = html_depth * page_size // 100  # the admin shows 100 a page: the same rows deep

    bench = Bench()
    for prefix, client, base, deep, depth in (
        ("HTML", browser, "/devices/", deep_html, html_depth),
        ("API", api, "/api/v1/devices/", deep_api, api_depth),
    ):
        bench.add(f"{prefix} first page", client, base)
        bench.add(f"{prefix} deep page ({depth} x next)", client, deep)
        bench.add(f"{prefix} MAC search q={fragment}", client, f"{base}?q={fragment}")
        bench.add(f"{prefix} signed in, last seen desc", client, f"{base}?state=signed_in&sort=-last_seen")
        bench.add(f"{prefix} waiting on activation, by MAC", client, f"{base}?state=waiting_on_activation&sort=mac")
    admin_url = f"/admin/devices/device/?tenant__id__exact={tenant.pk}"
    bench.add("admin first page (anchor)", operator, admin_url)
    bench.add(f"admin deep page p={admin_page} (anchor)", operator, f"{admin_url}&p={admin_page}")
    bench.add("admin all tenants first page (anchor)", operator, "/admin/devices/device/")

    print(f"measuring: {args.warmup} warm-up + {args.samples} timed requests per scenario, in rounds …", flush=True)
    load_before = os.getloadavg()[0]
    rows = bench.run(samples=args.samples, warmup=args.warmup)
    load_after = os.getloadavg()[0]
    print()
    print(f"{args.devices:,} devices, {args.tenants} tenants; tenant of {tenant_devices:,} devices; "
          f"{args.samples} samples, server-side ms; load average {load_before:.1f} -> {load_after:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(table(rows))

if __name__ == "__main__":
    main()
