import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gateway import relay
from gateway.edge import SipEdge, run
from gateway.sip.flood import TokenBuckets
from gateway.sip.transaction import Timers
from gateway.sip.transport import TransportError


def _transports(value: str) -> set[str]:
    chosen = {part.strip().lower() for part in value.split(",") if part.strip()}
    if not chosen or not chosen <= {"udp", "tcp"} or "udp" not in chosen:
        raise CommandError(f"--transport {value!r}: say udp or udp,tcp (UDP is always served)")
    return chosen


class Command(BaseCommand):
    help = "Run the SIP edge: REGISTER bindings and feature-code calls (*55*<code>, Sign-in, Sign-out)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SIP_EDGE_HOST, help="address to bind (default: SIP_EDGE_HOST)")
        parser.add_argument("--port", type=int, default=settings.SIP_EDGE_PORT, help="default: SIP_EDGE_PORT")
        parser.add_argument("--transport", default="udp,tcp", help="udp, or udp,tcp (default)")
        parser.add_argument(
            "--advertised-host",
            help="address put in Via and Contact (default: --host, or SIP_EDGE_HOST when binding 0.0.0.0)",
        )
        parser.add_argument(
            "--flood-rate", type=float, default=200.0, help="packets/s allowed per source IP (0: no limit)"
        )
        parser.add_argument("--flood-burst", type=float, default=400.0, help="burst allowed per source IP")
        parser.add_argument("--db-threads", type=int, default=8, help="threads for database calls")

    def handle(self, *args, **options):
        if settings.SIP_EDGE_TRANSPORT == "tls":
            self.stderr.write("SIP_EDGE_TRANSPORT=tls: this edge serves UDP and TCP only; put a TLS proxy in front.")
        host = options["host"]
        advertised = options["advertised_host"] or (settings.SIP_EDGE_HOST if host in ("0.0.0.0", "") else host)  # noqa: S104
        rate = options["flood_rate"]
        edge = SipEdge(
            host=host,
            port=options["port"],
            advertised_host=advertised,
            tcp="tcp" in _transports(options["transport"]),
            timers=Timers.scaled(settings.SIP_T1),
            sign_in_code=settings.FEATURE_CODE_SIGN_IN,
            sign_out_code=settings.FEATURE_CODE_SIGN_OUT,
            flood=TokenBuckets(rate=rate, burst=max(options["flood_burst"], 1)) if rate > 0 else None,
            db_threads=options["db_threads"],
            relay=relay.client(),
        )
        try:
            asyncio.run(self._serve(edge))
        except TransportError as exc:
            raise CommandError(str(exc)) from None

    async def _serve(self, edge: SipEdge) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(edge, stop=stop)
