import functools
import importlib

import factory
from django.apps import apps as django_apps
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from devices.choices import DeviceState
from devices.models import Device, DeviceModel
from portal.choices import Role
from portal.models import Membership, Tenant, User

PASSWORD = "correct-horse-battery"


@functools.cache
def password_hash() -> str:
    return make_password(PASSWORD)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    region = "noam"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    # Hashed before the INSERT (a post-generation set_password is never saved), once for the suite:
    # a hash costs ~0.3 s by design.
    password = factory.LazyFunction(lambda: password_hash())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.ADMIN


def _mac(n: int) -> str:
    digits = f"{0x001565000000 + n:012X}"
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    tenant = factory.SubFactory(TenantFactory)
    mac = factory.Sequence(_mac)
    location = "Building 1"
    display_name = factory.Sequence(lambda n: f"Phone {n}")
    state = DeviceState.WAITING_ON_ACTIVATION


def ensure_catalog() -> None:
    """The catalog comes from a data migration; transactional tests truncate it: put it back."""
    if not DeviceModel.objects.exists():
        migration = importlib.import_module("devices.migrations.0003_device_model_catalog")
        migration.seed(django_apps, None)


def device_model(vendor: str = "Yealink", model: str = "T54W") -> DeviceModel:
    ensure_catalog()
    return DeviceModel.objects.get(vendor=vendor, model=model)


def registered(device: Device, *, contact: str, transport: str = "udp", minutes: int = 30) -> Device:
    device.contact_uri = contact
    device.transport = transport
    device.registration_expires_at = timezone.now() + timezone.timedelta(minutes=minutes)
    device.save()
    return device
