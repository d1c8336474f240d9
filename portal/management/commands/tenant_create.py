import json

from django.core.management.base import BaseCommand, CommandError

from portal.choices import Region
from portal.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant with its admin (and technician); print one JSON line with their API tokens."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--region", choices=Region.values, default=Region.NOAM)
        parser.add_argument("--admin", required=True, metavar="EMAIL")
        parser.add_argument("--admin-password")
        parser.add_argument("--technician", metavar="EMAIL")
        parser.add_argument("--technician-password")
        parser.add_argument("--gateway-disabled", action="store_true", help="create it with SIP Gateway off")

    def handle(self, *args, **options):
        try:
            result = tenant_create(
                name=options["name"],
                region=options["region"],
                admin_email=options["admin"],
                admin_password=options["admin_password"],
                technician_email=options["technician"],
                technician_password=options["technician_password"],
                sip_gateway_enabled=not options["gateway_disabled"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(result))
