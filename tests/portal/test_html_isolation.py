"""The portal's pages follow the API's rule: another tenant's object is a 404 for every role, and a
role that may not act on its own tenant's object gets 403."""

import pytest
from django.test import Client
from django.urls import get_resolver

from tests.conftest import login
from tests.routes import url_patterns

PAGES = [
    ("get", "/devices/imports/{job}/"),
    ("get", "/devices/imports/{job}/errors.csv"),
    ("get", "/devices/{device}/"),
    ("post", "/devices/{device}/edit/"),
    ("post", "/devices/{device}/delete/"),
    ("post", "/devices/{device}/restart/"),
    ("post", "/devices/{device}/resync/"),
    ("get", "/devices/commands/{command}/status/"),
    ("post", "/devices/{device}/code/"),
    ("post", "/devices/{device}/sign-in/"),
    ("post", "/devices/{device}/sign-out/"),
    ("get", "/policies/{policy}/"),
    ("post", "/policies/{policy}/edit/"),
    ("post", "/policies/{policy}/delete/"),
    ("post", "/policies/{policy}/default/"),
    ("post", "/policies/{policy}/assign/"),
    ("post", "/policies/{policy}/unassign/"),
]


@pytest.mark.parametrize(("method", "url"), PAGES)
def test_another_tenants_object_is_a_404_and_ones_own_a_403_for_a_technician(
    objects_of, tenant_a, tech_a, tech_b, method, url
):
    ours = objects_of(tenant_a)
    missing = {name: pk + 10_000 for name, pk in ours.items()}
    theirs, own = login(Client(), tech_b), login(Client(), tech_a)
    assert getattr(theirs, method)(url.format(**ours)).status_code == 404
    assert getattr(theirs, method)(url.format(**missing)).status_code == 404
    assert getattr(own, method)(url.format(**ours)).status_code == 403


def test_every_page_of_one_object_for_some_roles_names_its_model():
    """A new page with a `pk` whose member_required forgot `model=` would answer 403 for another
    tenant's object."""
    restricted = [
        path
        for path, callback in url_patterns(get_resolver())
        if "<int:pk>" in path and getattr(callback, "member_roles", None) is not None
    ]
    assert len(restricted) >= len(PAGES)
    assert [path for path, callback in url_patterns(get_resolver())
            if path in restricted and getattr(callback, "member_model", None) is None] == []
