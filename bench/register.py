"""REGISTER benchmark: SIPp as N phones (distinct MACs) registering with one `manage.py run_sip_edge`
over UDP for the first time (a User-Agent the portal has not seen: model and firmware are read
from it), then refreshing; every binding must be in the database, with no SIP errors. Target:
>= 1,000 REGISTER/s.

It runs in a database of its own (`bench_register` on the DATABASE_URL server, created, migrated
and seeded with COPY here). The edge runs as in production (flood control off: every phone here
shares 127.0.0.1), with the relay notes in Redis when CACHE_URL points at Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/register.py
    ... --phones 5000 --rate 1000     a smaller run
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.policy_sync import copy_rows, use_bench_database  # noqa: E402 - after sys.path

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="a fleet of phones registers">
  <send retrans="500">
    <![CDATA[

REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: [cseq] REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
Expires: 3600
User-Agent: Yealink SIP-T54W 96.86.0.70
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=4000, help="REGISTERs per second SIPp offers")
    parser.add_argument("--in-flight", type=int, default=500, help="SIPp's limit of open registrations")
    parser.add_argument("--db-threads", type=int, default=8)
    parser.add_argument("--database", default="bench_register", help="the database this bench owns")
    return parser.parse_args()


def mac_digits(i: int) -> str:
    return f"{0x001565000000 + i:012X}"


def seed(phones: int) -> None:
    from django.db import connection, transaction

    from devices.models import DeviceModel
    from portal.models import Tenant

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S+00")
    model = DeviceModel.objects.get(vendor="Yealink", model="T54W").pk
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE portal_tenant, portal_user RESTART IDENTITY CASCADE")
        tenant = Tenant.objects.create(name="Contoso", region="noam")
        columns = [
            "tenant_id",
            "mac",
            "display_name",
            "location",
            "model_id",
            "firmware",
            "state",
            "phone_number",
            "contact_uri",
            "transport",
            "source_address",
            "user_agent",
            "last_provisioned_user_agent",
            "wanted_version",
            "synced_version",
            "created_at",
            "updated_at",
        ]

        def line(i: int) -> str:
            digits = mac_digits(i)
            mac = "-".join(digits[k : k + 2] for k in range(0, 12, 2))
            return (
                f"{tenant.pk}\t{mac}\tDesk {i}\tHQ\t{model}\t\twaiting_for_sign_in\t\t\t\t\t"
                f"\t\t1\t1\t{stamp}\t{stamp}\n"
            )

        copy_rows(cursor, "devices_device", columns, (line(i) for i in range(phones)))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE devices_device")


def start_edge(port: int, db_threads: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    with log_path.open("ab") as log:
        edge = subprocess.Popen(
            [sys.executable, "manage.py", "run_sip_edge", "--host", "127.0.0.1", "--port", str(port),
             "--transport", "udp", "--flood-rate", "0", "--db-threads", str(db_threads)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    time.sleep(3)  # Django and the loop come up; SIPp retransmits anyway should we be early
    if edge.poll() is not None:
        sys.exit(f"run_sip_edge exited:\n{log_path.read_text()[-3000:]}")
    return edge


def register_round(*, label: str, edge_port: int, phones: int, args, workdir: Path) -> None:
    from tests.gateway.sip.sipp import free_port

    port = free_port()
    stats = workdir / f"{label}.csv"
    command = [
        "sipp", "-sf", str(workdir / "register.xml"), "-inf", str(workdir / "phones.csv"),
        "-i", "127.0.0.1", "-p", str(port), "-t", "u1", "-m", str(phones),
        "-r", str(args.rate), "-rp", "1000", "-l", str(args.in_flight), "-nostdin",
        "-timeout", "600s", "-buff_size", str(8 * 1024 * 1024),
        "-trace_stat", "-stf", str(stats), "-fd", "3600", "-trace_err", "-error_file", str(workdir / f"{label}.err"),
        f"127.0.0.1:{edge_port}",
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - started
    header, *rows = stats.read_text().splitlines()
    last = dict(zip(header.split(";"), rows[-1].split(";"), strict=False))
    ok, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])
    retrans = int(last.get("Retransmissions(C)", "0") or 0)
    print(
        f"{label:<10} {phones:>7,} REGISTERs in {seconds:6.2f} s = {phones / seconds:7,.0f}/s   "
        f"200 OK {ok:,}, failed {failed:,}, SIPp retransmissions {retrans:,}, exit {result.returncode}"
    )


def main() -> None:
    args = parse_args()
    use_bench_database(args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from devices.models import Device
    from tests.gateway.sip.sipp import INSTALL_HINT, free_port, sipp_path

    if sipp_path() is None:
        sys.exit(INSTALL_HINT)
    call_command("migrate", verbosity=0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-register-"))
    (workdir / "register.xml").write_text(SCENARIO)
    macs = "".join(f"{mac_digits(i).lower()};\n" for i in range(args.phones))
    (workdir / "phones.csv").write_text("SEQUENTIAL\n" + macs)

    print(f"machine      {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    started = time.perf_counter()
    seed(args.phones)
    print(f"seed         {args.phones:,} onboarded phones in {time.perf_counter() - started:.1f} s")
    edge_port = free_port()
    edge = start_edge(edge_port, args.db_threads, workdir / "edge.log")
    try:
        for label in ("register", "refresh"):
            register_round(label=label, edge_port=edge_port, phones=args.phones, args=args, workdir=workdir)
            bound = Device.objects.filter(registration_expires_at__gt=timezone.now()).exclude(contact_uri="").count()
            print(f"{'':<10} bindings in the database: {bound:,} of {args.phones:,}")
    finally:
        edge.terminate()
        edge.wait(30)
    errors = re.findall(r"ERROR|Traceback", (workdir / "edge.log").read_text())
    print(f"edge log     {len(errors)} errors ({workdir / 'edge.log'})")


if __name__ == "__main__":
    main()
