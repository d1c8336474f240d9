import pytest

from devices.choices import DeviceState
from tests.factories import DeviceFactory


@pytest.fixture(autouse=True)
def every_test_has_own_cache_keys(own_cache_keys):
    """Codes and pairing are where lockouts are counted: no test here shares its counters."""


@pytest.fixture
def waiting_a(tenant_a):
    return DeviceFactory(tenant=tenant_a, location="Reception", state=DeviceState.WAITING_ON_ACTIVATION)


@pytest.fixture
def enrolled_a(tenant_a):
    return DeviceFactory(tenant=tenant_a, location="Lab", state=DeviceState.WAITING_FOR_SIGN_IN)


@pytest.fixture
def waiting_b(tenant_b):
    return DeviceFactory(tenant=tenant_b, location="Reception", state=DeviceState.WAITING_ON_ACTIVATION)
