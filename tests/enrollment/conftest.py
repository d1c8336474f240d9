from uuid import uuid4

import pytest

from devices.choices import DeviceState
from tests.factories import DeviceFactory


@pytest.fixture(autouse=True)
def own_cache_keys(settings):
    """Lockout counters live in the real Redis cache; a key prefix per test keeps tests (and
    parallel test processes, whose device ids coincide) from counting each other's attempts."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid4().hex}"}}


@pytest.fixture
def waiting_a(tenant_a):
    return DeviceFactory(tenant=tenant_a, location="Reception", state=DeviceState.WAITING_ON_ACTIVATION)


@pytest.fixture
def enrolled_a(tenant_a):
    return DeviceFactory(tenant=tenant_a, location="Lab", state=DeviceState.WAITING_FOR_SIGN_IN)


@pytest.fixture
def waiting_b(tenant_b):
    return DeviceFactory(tenant=tenant_b, location="Reception", state=DeviceState.WAITING_ON_ACTIVATION)
