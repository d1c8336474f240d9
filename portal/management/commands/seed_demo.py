import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from devices.choices import DeviceState, Transport
from devices.models import Device, DeviceModel
from portal.choices import Role
from portal.models import Tenant, User
from portal.services import tenant_create, user_create

DEMO_TENANT = "Contoso (demo)"
LOCATIONS = [
    "Building 1 / Floor 2",
    "Building 1 / Lobby",
    "Building 2 / Floor 1",
    "Warehouse",
    "Reception",
    "Lab 3",
    "Boardroom",
    "Call center",
    "Kitchen",
    "Remote office",
]
# The end user's colleagues, signed in on the other phones; they have no password (no sign-in).
COLLEAGUES = [
    ("Adele", "Vance"), ("Alex", "Wilber"), ("Diego", "Siciliani"), ("Grady", "Archie"), ("Isaiah", "Langer"),
    ("Johanna", "Lorenz"), ("Lee", "Gu"), ("Lidia", "Holloway"), ("Nestor", "Wilke"),
]


class Command(BaseCommand):
    help = "Create the demo tenant (admin, technician, end user, a few hundred phones) unless it exists; print logins."

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=int, default=300)
        parser.add_argument("--password", default="demo-password-1")

    @transaction.atomic
    def handle(self, *args, **options):
        password = options["password"]
        logins = {
            "admin": "admin@contoso.example",
            "technician": "tech@contoso.example",
            "user": "user@contoso.example",
        }
        if not Tenant.objects.filter(name=DEMO_TENANT).exists():
            result = tenant_create(
                name=DEMO_TENANT,
                region="noam",
                admin_email=logins["admin"],
                admin_password=password,
                technician_email=logins["technician"],
                technician_password=password,
            )
            tenant = Tenant.objects.get(pk=result["tenant"])
            end_user = user_create(
                tenant=tenant,
                email=logins["user"],
                role=Role.USER,
                password=password,
                first_name="Megan",
                last_name="Bowen",
                phone_number="+1 425 555 0100",
            )
            colleagues = [
                user_create(
                    tenant=tenant, email=f"{first}.{last}@contoso.example".lower(), role=Role.USER,
                    first_name=first, last_name=last,
                )
                for first, last in COLLEAGUES
            ]
            self._devices(tenant, [end_user, *colleagues], options["devices"])
            self.stdout.write(self.style.SUCCESS(f"Created {DEMO_TENANT} with {options['devices']} devices."))
            self.stdout.write(f"API token of the admin: {result['admin_token']}")
        else:
            self.stdout.write(f"{DEMO_TENANT} exists already; logins unchanged.")
        self.stdout.write("Sign in at http://localhost:8000/ with:")
        for role, email in logins.items():
            self.stdout.write(f"  {role:<11} {email}  /  {password}")

    def _devices(self, tenant: Tenant, users: list[User], count: int) -> None:
        """Every signed-in phone has its user: the end user has every tenth, colleagues the rest."""
        rng = random.Random(42)
        catalog = list(DeviceModel.objects.all())
        now = timezone.now()
        devices = []
        taken = set(Device.objects.values_list("mac", flat=True))
        while len(devices) < count:
            mac = "-".join(f"{rng.randrange(256):02X}" for _ in range(6))
            if mac in taken:
                continue
            taken.add(mac)
            model = rng.choice(catalog)
            state = rng.choices(list(DeviceState), weights=[3, 3, 4])[0]
            online = state != DeviceState.WAITING_ON_ACTIVATION and rng.random() < 0.7
            signed_in = state == DeviceState.SIGNED_IN
            devices.append(
                Device(
                    tenant=tenant,
                    mac=mac,
                    model=model if state != DeviceState.WAITING_ON_ACTIVATION else None,
                    display_name=f"{model.vendor} {model.model} {len(devices) + 1}",
                    location=rng.choice(LOCATIONS),
                    state=state,
                    firmware=model.min_firmware if state != DeviceState.WAITING_ON_ACTIVATION else "",
                    signed_in_user=users[len(devices) % len(users)] if signed_in else None,
                    phone_number=f"+1 425 555 {1000 + len(devices):04d}" if signed_in else "",
                    contact_uri=f"sip:{mac.replace('-', '').lower()}@127.0.0.1:{20000 + len(devices)}"
                    if online
                    else "",
                    transport=Transport.UDP if online else "",
                    registration_expires_at=now + timedelta(minutes=rng.randrange(5, 60)) if online else None,
                    last_seen_at=(now - timedelta(minutes=rng.randrange(0, 60 if online else 60 * 24 * 10)))
                    if state != DeviceState.WAITING_ON_ACTIVATION
                    else None,
                )
            )
        Device.objects.bulk_create(devices, batch_size=1000)
