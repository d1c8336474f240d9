"""Another tenant's object is a 404, never a 403 (DESIGN.md, REST API), whatever the caller's role,
as is an id that names nothing. In the caller's own tenant a role that may not act gets 403."""

import pytest
from django.urls import get_resolver

from tests.routes import url_patterns

ACTIONS = [
    ("patch", "/api/v1/devices/{device}/"),
    ("delete", "/api/v1/devices/{device}/"),
    ("post", "/api/v1/devices/{device}/restart/"),
    ("post", "/api/v1/devices/{device}/resync/"),
    ("post", "/api/v1/devices/{device}/verification-code/"),
    ("post", "/api/v1/devices/{device}/sign-in/"),
    ("post", "/api/v1/devices/{device}/sign-out/"),
    ("get", "/api/v1/imports/{job}/"),
    ("get", "/api/v1/imports/{job}/errors.csv"),
    ("get", "/api/v1/policies/{policy}/"),
    ("patch", "/api/v1/policies/{policy}/"),
    ("delete", "/api/v1/policies/{policy}/"),
    ("post", "/api/v1/policies/{policy}/assignments/"),
]


@pytest.mark.parametrize("caller", ["tech_b", "user_b"])
@pytest.mark.parametrize(("method", "url"), ACTIONS)
def test_a_role_that_may_not_act_gets_404_for_another_tenants_object_and_for_none(
    request, objects_of, tenant_a, caller, method, url
):
    theirs = objects_of(tenant_a)
    missing = {name: pk + 10_000 for name, pk in theirs.items()}
    api = request.getfixturevalue(caller).api
    assert getattr(api, method)(url.format(**theirs), {}, format="json").status_code == 404
    assert getattr(api, method)(url.format(**missing), {}, format="json").status_code == 404


@pytest.mark.parametrize(("method", "url"), ACTIONS)
def test_in_its_own_tenant_a_technician_is_refused_with_403(objects_of, tech_a, tenant_a, method, url):
    ours = objects_of(tenant_a)
    assert getattr(tech_a.api, method)(url.format(**ours), {}, format="json").status_code == 403


def test_every_v1_view_of_one_object_names_its_model():
    """A new view with a `pk` that forgot `tenant_model` would answer another tenant's id with 403."""
    views = [(path, getattr(callback, "view_class", None)) for path, callback in url_patterns(get_resolver())]
    with_pk = [(path, view) for path, view in views if path.startswith("api/v1/") and "<int:pk>" in path]
    assert len(with_pk) >= 10
    assert [path for path, view in with_pk if getattr(view, "tenant_model", None) is None] == []
