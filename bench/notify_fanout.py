"""NOTIFY fan-out: N NOTIFYs through ``send_notifies`` to one SIPp phone (UAS) on 127.0.0.1.

    .venv/bin/python bench/notify_fanout.py [-n 10000] [--concurrency 200] [--t1 0.5] [--transport udp]

With thousands in flight SIPp answers later than T1 (or the kernel drops datagrams), and the
retransmission count shows the transaction layer recovering; --sipp-buffer 4194304 avoids drops.

Prints figures; asserts nothing about time. SIPp (Debian's sip-tester) must be installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.sip.notify import NotifyTarget, send_notifies  # noqa: E402
from gateway.sip.transaction import Timers  # noqa: E402
from gateway.sip.transport import SipEndpoint  # noqa: E402
from tests.gateway.sip.sipp import INSTALL_HINT, Sipp, sipp_path  # noqa: E402

LINGER_MS = 5000  # facts.md: SIPp must linger ~5 s after its 200 OK to answer retransmissions


async def run(args: argparse.Namespace, sipp: Sipp) -> None:
    suffix = ";transport=tcp" if args.transport == "tcp" else ""
    targets = [
        NotifyTarget(key=i, contact_uri=f"sip:phone{i:05d}@127.0.0.1:{sipp.port}{suffix}", transport=args.transport)
        for i in range(args.n)
    ]
    async with SipEndpoint(timers=Timers(t1=args.t1)) as endpoint:
        started, cpu_started = time.perf_counter(), time.process_time()
        outcomes = await send_notifies(
            targets, "check-sync;reboot=false", endpoint=endpoint, concurrency=args.concurrency
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stats = endpoint.stats
        # Over TCP, SIPp fails the calls of a connection closed under it: let it finish first.
        code = await asyncio.to_thread(sipp.wait, LINGER_MS / 1000 + 60) if args.transport == "tcp" else None

    counts = {kind: sum(1 for o in outcomes if o.outcome == kind) for kind in ("sent", "rejected", "unreachable")}
    print(f"machine            {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"transport          {args.transport}")
    print(f"NOTIFYs            {args.n}  (concurrency {args.concurrency}, T1 {args.t1:g} s)")
    print(f"sent               {counts['sent']}")
    print(f"rejected           {counts['rejected']}")
    print(f"unreachable        {counts['unreachable']}")
    print(f"wall time          {wall:.3f} s")
    print(f"NOTIFYs/s          {args.n / wall:,.0f}")
    # CPU time does not depend on what else the machine runs (wall time does): compare this one.
    print(f"CPU, this process  {cpu:.3f} s  ({1e6 * cpu / args.n:.0f} µs per NOTIFY, user + system)")
    print(f"retransmissions    {sum(o.retransmissions for o in outcomes)}")
    print(f"duplicate answers  {stats.absorbed} absorbed by their transaction, {stats.stray_responses} stray")
    if code is None:
        code = sipp.wait(LINGER_MS / 1000 + 60)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"CPU, SIPp          {children.ru_utime + children.ru_stime:.3f} s  (whole run, linger included)")
    print(f"SIPp exit code     {code}  (0: every call passed its scenario)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="number of NOTIFYs (default 10000)")
    parser.add_argument("--concurrency", type=int, default=200, help="NOTIFYs in flight (default 200)")
    parser.add_argument("--t1", type=float, default=0.5, help="T1 in seconds (default 0.5, RFC 3261)")
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    parser.add_argument("--sipp-buffer", type=int, default=0, help="SIPp socket buffer in bytes (default: its own)")
    args = parser.parse_args()
    if sipp_path() is None:
        sys.exit(INSTALL_HINT)
    with tempfile.TemporaryDirectory() as workdir:
        sipp = Sipp(
            "phone_any_check_sync.xml",
            workdir=Path(workdir),
            transport=args.transport,
            calls=args.n,
            linger_ms=LINGER_MS,
            trace=False,
            extra=("-buff_size", str(args.sipp_buffer)) if args.sipp_buffer else (),
        )
        with sipp:
            asyncio.run(run(args, sipp))


if __name__ == "__main__":
    main()
