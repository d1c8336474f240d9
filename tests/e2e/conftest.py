"""The processes a phone meets, one of each for these tests: the real `manage.py run_sip_edge` and a
Celery worker, on the test database and Redis, with the live server for HTTP."""

from uuid import uuid4

import pytest
from django.conf import settings

from tests.gateway.edge_helpers import EdgeProcess
from tests.workers import running_worker


@pytest.fixture(scope="package")
def cache_prefix() -> str:
    """The edge and the worker share Redis keys (relay, lockouts) under a prefix of their own,
    so that lockouts here never count against the phones of other tests."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}-e2e-{uuid4().hex[:8]}"


@pytest.fixture(scope="package")
def edge(django_db_setup, live_server, cache_prefix):
    process = EdgeProcess(extra_env={"CACHE_KEY_PREFIX": cache_prefix, "PUBLIC_BASE_URL": live_server.url})
    with process:
        yield process
        assert process.terminate() == 0, process.log()
        log = process.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]


@pytest.fixture(scope="package")
def worker(django_db_setup, cache_prefix):
    with running_worker(extra_env={"CACHE_KEY_PREFIX": cache_prefix, "SIP_T1": "0.05"}) as running:
        yield running
