"""Policy sync benchmark: N signed-in, registered phones of one tenant; change its default policies
and time (1) the version bump, one UPDATE over the tenant's devices (target <= 2 s at 100,000), and
(2) the fan-out: the hourly task's commands, and their NOTIFYs to one SIPp phone (UAS) on 127.0.0.1
that answers for every device (distinct SIP users), until every command is final (target <= 20 s).

It runs in a database of its own (`bench_policy_sync` on the DATABASE_URL server, created, migrated
and seeded with COPY here), so the test database and dev data are untouched. The NOTIFYs are sent
by the same service the Celery worker runs (gateway.services.device_commands_send): in this process
(`--send inprocess`, tasks run eagerly one after the other) or by real `celery worker` processes on
Redis (`--send worker`, the default).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/policy_sync.py
    ... --devices 10000        a smaller run
    ... --send inprocess       no worker, no Redis
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAINTENANCE_DB = "postgres"
BROKER = "redis://127.0.0.1:6379/13"
LINGER_MS = 5000  # facts.md: SIPp must linger ~5 s after its 200 OK to answer retransmissions
# Every vendor's resync Event: the catalog's Yealink/Poly/Snom/AudioCodes/Gigaset and Cisco's.
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="a fleet of phones answers check-sync">
  <recv request="NOTIFY">
    <action>
      <ereg regexp="^ *(check-sync(;reboot=false)?|resync) *$" search_in="hdr" header="Event:" check_it="true"
            assign_to="event"/>
    </action>
  </recv>
  <send>
    <![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
  <pause/>
  <Reference variables="event"/>
</scenario>
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--send", choices=["worker", "inprocess"], default="worker")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (--send worker)")
    parser.add_argument("--batch", type=int, default=None, help="NOTIFYs per send task (POLICY_SYNC_BATCH)")
    parser.add_argument("--database", default="bench_policy_sync", help="the database this bench owns")
    return parser.parse_args()


def use_bench_database(name: str) -> str:
    """Point DATABASE_URL at our own database on the same server, creating it when missing."""
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit("bench/policy_sync.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path=f"/{MAINTENANCE_DB}")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    return os.environ["DATABASE_URL"]


def copy_rows(cursor, table: str, columns: list[str], lines) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            if buffer.tell() > 1 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def seed(*, devices: int, port: int) -> dict:
    """One tenant, `devices` users each signed in on one registered phone, all in sync; 5% of the
    users and 1% of the devices hold a calling policy of their own (the default does not reach them)."""
    from django.db import connection, transaction

    from devices.models import DeviceModel
    from policies.services import policy_create, policy_defaults_ensure
    from portal.models import Tenant
    from portal.services import Actor

    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S+00")
    expires = (now + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S+00")
    models = list(DeviceModel.objects.order_by("id").values_list("id", flat=True))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE portal_tenant, portal_user, django_session RESTART IDENTITY CASCADE")
        tenant = Tenant.objects.create(name="Contoso", region="noam")
        copy_rows(
            cursor,
            "portal_user",
            [
                "id",
                "password",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
                "phone_number",
            ],
            (
                f"{i}\t!\tf\tuser{i}@contoso.example\tUser\t{i}\tuser{i}@contoso.example\tf\tt\t{stamp}\t+1425{i:07d}\n"
                for i in range(1, devices + 1)
            ),
        )
        copy_rows(
            cursor,
            "portal_membership",
            ["id", "user_id", "tenant_id", "role"],
            (f"{i}\t{i}\t{tenant.pk}\tuser\n" for i in range(1, devices + 1)),
        )

        def device_line(i: int) -> str:
            digits = f"{0x805EC0000000 + i:012X}"
            mac = "-".join(digits[k : k + 2] for k in range(0, 12, 2))
            return (
                f"{i}\t{tenant.pk}\t{mac}\tDesk {i}\tHQ / Floor {i % 20}\t{models[i % len(models)]}\t1.0\tsigned_in\t"
                f"{i}\t+1425{i:07d}\tsip:{digits}@127.0.0.1:{port}\tudp\t\t\t{expires}\t{stamp}\t\t1\t1\t{stamp}\t{stamp}\n"
            )

        copy_rows(
            cursor,
            "devices_device",
            [
                "id",
                "tenant_id",
                "mac",
                "display_name",
                "location",
                "model_id",
                "firmware",
                "state",
                "signed_in_user_id",
                "phone_number",
                "contact_uri",
                "transport",
                "source_address",
                "user_agent",
                "registration_expires_at",
                "last_seen_at",
                "last_provisioned_user_agent",
                "wanted_version",
                "synced_version",
                "created_at",
                "updated_at",
            ],
            (device_line(i) for i in range(1, devices + 1)),
        )
        for table in ("portal_user", "portal_membership", "devices_device"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        defaults = policy_defaults_ensure(tenant=tenant)
        actor = Actor.system("bench")
        sales = policy_create(tenant=tenant, actor=actor, kind="calling", name="Sales", settings={"voicemail": False})
        desk = policy_create(
            tenant=tenant, actor=actor, kind="calling", name="Front desk", settings={"call_forwarding": False}
        )
        cursor.execute(
            "INSERT INTO policies_policyassignment (tenant_id, policy_id, kind, user_id, assigned_by_label, "
            "created_at) SELECT %s, %s, 'calling', id, 'bench', now() FROM portal_user WHERE id %% 20 = 0",
            [tenant.pk, sales.pk],
        )
        cursor.execute(
            "INSERT INTO policies_policyassignment (tenant_id, policy_id, kind, device_id, assigned_by_label, "
            "created_at) SELECT %s, %s, 'calling', id, 'bench', now() FROM devices_device WHERE id %% 100 = 7",
            [tenant.pk, desk.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # a live table would have been vacuumed and analyzed
    return {"tenant": tenant, "defaults": defaults}


def timed(action):
    """`action()` in a transaction of its own, its seconds, and the share of the devices' row updates
    that were HOT (no index entries: the page had room for the new version)."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic():
        result = action()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'devices_device'"
            )
            updated, hot = cursor.fetchone()
    return result, time.perf_counter() - started, f"{100 * hot / max(updated, 1):.0f}% HOT"


def cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pids(database: str) -> list[int]:
    """PostgreSQL's server processes serving the bench's connections (not autovacuum's)."""
    import psycopg

    url = urlsplit(os.environ["DATABASE_URL"])
    with psycopg.connect(urlunsplit(url._replace(path=f"/{MAINTENANCE_DB}")), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'", [database]
        ).fetchall()
    return [pid for (pid,) in rows]


def start_workers(count: int, url: str) -> list[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": BROKER, "LOG_LEVEL": "WARNING"}
    workers = []
    log = open(tempfile.gettempdir() + "/bench-policy-sync-worker.log", "ab")  # noqa: SIM115 - closed with the process
    for n in range(count):
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--loglevel=WARNING",
                    "--concurrency=1",
                    "--pool=solo",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench-{os.getpid()}-{n}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return workers


def main() -> None:
    args = parse_args()
    url = use_bench_database(args.database)
    if args.batch:
        os.environ["POLICY_SYNC_BATCH"] = str(args.batch)
    if args.send == "inprocess":
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    else:
        os.environ["CELERY_BROKER_URL"] = BROKER
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Count, F

    from devices.choices import PENDING_COMMAND_STATUSES, CommandKind
    from devices.models import Device, DeviceCommand
    from policies.services import policy_assign, policy_create, policy_sync_fan_out, policy_update
    from portal.services import Actor
    from tests.gateway.sip.sipp import INSTALL_HINT, Sipp, sipp_path

    if sipp_path() is None:
        sys.exit(INSTALL_HINT)
    call_command("migrate", verbosity=0)
    actor = Actor.system("bench")
    workdir = Path(tempfile.mkdtemp(prefix="bench-policy-sync-"))
    scenario = workdir / "fleet.xml"
    scenario.write_text(SCENARIO)
    sipp = Sipp(
        str(scenario),
        workdir=workdir,
        calls=args.devices,
        linger_ms=LINGER_MS,
        trace=False,
        extra=("-buff_size", str(8 * 1024 * 1024), "-timeout", "300s"),
    )

    print(f"machine            {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"devices            {args.devices:,} signed in, registered, in sync (one tenant)")
    started = time.perf_counter()
    seeded = seed(devices=args.devices, port=sipp.port)
    print(f"seed (COPY)        {time.perf_counter() - started:.1f} s")
    tenant, defaults = seeded["tenant"], seeded["defaults"]

    # (1) The version bump.
    def bump(label: str, action, note: str = "") -> None:
        raised, seconds, hot = timed(action)
        print(f"bump: {label:<44} {raised:>7,} devices raised in {seconds:.3f} s  ({hot}{note})")

    bump(
        "edit the default IP phone policy",
        lambda: policy_update(policy=defaults["ip_phone"], actor=actor, data={"settings": {"language": "fr"}})[1],
    )
    bump(
        "edit the default calling policy",
        lambda: policy_update(policy=defaults["calling"], actor=actor, data={"settings": {"simultaneous_ring": False}})[
            1
        ],
        "; users and devices with a calling policy of their own left out",
    )
    lobby = policy_create(tenant=tenant, actor=actor, kind="ip_phone", name="Lobby", settings={"language": "de"})
    bump(
        "make another IP phone policy the default",
        lambda: policy_assign(policy=lobby, actor=actor, tenant_default=True).raised,
    )
    behind = Device.objects.filter(tenant=tenant, synced_version__lt=F("wanted_version")).count()
    print(f"devices behind     {behind:,}")

    # (2) The fan-out, until every command is final.
    workers = []
    if args.send == "worker":
        redis.Redis.from_url(BROKER).flushdb()
        workers = start_workers(args.workers, url)
        time.sleep(4)  # let them connect before the clock starts
    commands = DeviceCommand.objects.filter(tenant=tenant, kind=CommandKind.POLICY_SYNC)
    # CPU time, unlike wall time, does not depend on what else the machine runs: count it per process.
    cpu: dict[str, float] = {}
    try:
        with sipp:
            assert sipp.process is not None
            backends = {pid: cpu_seconds(pid) for pid in backend_pids(args.database)}
            cpu_before = {"workers": sum(cpu_seconds(w.pid) for w in workers), "this process": time.process_time()}
            started = time.perf_counter()
            queued = policy_sync_fan_out()
            queue_seconds = time.perf_counter() - started
            while commands.filter(status__in=PENDING_COMMAND_STATUSES).exists():
                time.sleep(0.2)
            total = time.perf_counter() - started
            cpu["workers"] = sum(cpu_seconds(w.pid) for w in workers) - cpu_before["workers"]
            cpu["PostgreSQL"] = sum(cpu_seconds(pid) - backends.get(pid, 0.0) for pid in backend_pids(args.database))
            cpu["SIPp"] = cpu_seconds(sipp.process.pid)
            cpu["this process"] = time.process_time() - cpu_before["this process"]
            code = sipp.wait(LINGER_MS / 1000 + 60)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(10)
    statuses = dict(commands.values_list("status").annotate(n=Count("id")))
    if args.send == "inprocess":  # eager tasks: the sends ran inside the fan-out, batch by batch
        print(
            f"fan-out: queue and send inline                 {queued:>7,} commands, all final in {total:.3f} s"
            f"  ({queued / total:,.0f} NOTIFY/s, {settings.POLICY_SYNC_BATCH} per batch)"
        )
    else:
        print(f"fan-out: commands queued (INSERT ... SELECT)    {queued:>7,} in {queue_seconds:.3f} s")
        print(
            f"fan-out: queued -> all final                    {total:.3f} s  ({queued / total:,.0f} NOTIFY/s,"
            f" {args.workers} workers, {settings.POLICY_SYNC_BATCH} per task)"
        )
    print(
        "CPU until all final  "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items() if seconds or name != "workers")
        + f"  = {1e6 * sum(cpu.values()) / max(queued, 1):,.0f} µs per NOTIFY"
        + (f" (workers alone {1e6 * cpu['workers'] / max(queued, 1):,.0f} µs)" if workers else "")
    )
    print(f"load average       {' '.join(f'{x:.1f}' for x in os.getloadavg())} (at the end)")
    print(f"statuses           {statuses}")
    print(f"SIPp exit code     {code}  (0: every call passed its scenario)")


if __name__ == "__main__":
    main()
