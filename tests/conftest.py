"""Three kinds of caller in every test: a member of tenant A (admin, technician, end user),
an admin of tenant B who must never see A's objects, and nobody at all."""

import os
from dataclasses import dataclass
from uuid import uuid4

import pytest
from rest_framework.test import APIClient

from portal.choices import Role
from portal.services import api_token_create
from tests.factories import MembershipFactory, TenantFactory, ensure_catalog
from tests.workers import running_worker


@dataclass
class Caller:
    user: object
    tenant: object
    token: str
    api: APIClient


def _caller(tenant, role) -> Caller:
    membership = MembershipFactory(tenant=tenant, role=role)
    _, key = api_token_create(user=membership.user, name="tests")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return Caller(user=membership.user, tenant=tenant, token=key, api=api)


def pytest_sessionstart(session):
    """Stop at once unless on PostgreSQL and Redis, as `make test` sets them up: on the embedded defaults
    (SQLite, a file cache) row locks, lockout counters and the worker tests would not test what they say.
    Only this process's settings: the smoke tests start the product on its defaults in subprocesses."""
    from django.conf import settings

    wrong = []
    if (engine := settings.DATABASES["default"]["ENGINE"]) != "django.db.backends.postgresql":
        wrong.append(f"the database is {engine}, not PostgreSQL (DATABASE_URL)")
    if (cache := settings.CACHES["default"]["BACKEND"]) != "django.core.cache.backends.redis.RedisCache":
        wrong.append(f"the cache is {cache}, not Redis (CACHE_URL)")
    if wrong:
        raise pytest.UsageError(f"{'; '.join(wrong)}: run the tests with `make test`")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database per run (test_test_<pid>), so that runs side by side never drop each other's."""
    from django.conf import settings

    suffix = os.environ.get("TEST_DB_SUFFIX") or str(os.getpid())
    for db in settings.DATABASES.values():
        if db["ENGINE"] != "django.db.backends.postgresql":
            continue
        test = db.setdefault("TEST", {})
        test["NAME"] = f"{test.get('NAME') or 'test_' + db['NAME']}_{suffix}"


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Contoso")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Fabrikam")


@pytest.fixture
def admin_a(tenant_a) -> Caller:
    return _caller(tenant_a, Role.ADMIN)


@pytest.fixture
def tech_a(tenant_a) -> Caller:
    return _caller(tenant_a, Role.TECHNICIAN)


@pytest.fixture
def user_a(tenant_a) -> Caller:
    return _caller(tenant_a, Role.USER)


@pytest.fixture
def admin_b(tenant_b) -> Caller:
    return _caller(tenant_b, Role.ADMIN)


@pytest.fixture
def tech_b(tenant_b) -> Caller:
    return _caller(tenant_b, Role.TECHNICIAN)


@pytest.fixture
def user_b(tenant_b) -> Caller:
    return _caller(tenant_b, Role.USER)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


def login(client, caller: Caller):
    # force_login: checking the password costs ~0.3 s (PBKDF2) on every call; the login view
    # itself is tested in tests/portal/test_views.py.
    client.force_login(caller.user)
    return client


@pytest.fixture
def celery_worker(transactional_db):
    """A real `celery worker` process on Redis and the test database (data must be committed)."""
    with running_worker() as worker:
        yield worker


@pytest.fixture
def own_cache_keys(settings):
    """Counters such as lockouts and provisioning misses live in the real Redis cache: a key prefix of
    the test's own keeps tests, and test runs side by side whose ids coincide, from counting each
    other's. Opt-in, not autouse: a test with a Celery worker process shares the run's prefix with it."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid4().hex}"}}


@pytest.fixture
def catalog(transactional_db):
    """The seeded catalog of device models, put back: transactional tests empty every table, it included."""
    ensure_catalog()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Browser tests last: Playwright's sync API leaves an event loop on the main thread until the
    session ends, and asyncio.run() in any later test (the SIP core's) would refuse to start."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
