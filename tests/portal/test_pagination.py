"""Keyset pagination: walking every page forward and back must visit each row exactly once, in the
order one ORDER BY over the whole table gives (NULLs last both ways), whatever the sort."""

import base64
import json
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from devices.models import Device
from portal.pagination import InvalidCursor, keyset_page
from tests.factories import DeviceFactory, TenantFactory, device_model


def _oracle(ordering: list[str]) -> list[int]:
    """The order the database gives the whole table at once, NULLs last in both directions."""
    order_by = [
        F(o[1:]).desc(nulls_last=True) if o.startswith("-") else F(o).asc(nulls_last=True) for o in ordering
    ]
    return list(Device.objects.order_by(*order_by).values_list("id", flat=True))


def walk_forward(ordering, page_size):
    pages, cursor = [], None
    while True:
        page = keyset_page(Device.objects.all(), ordering=ordering, cursor=cursor, page_size=page_size)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 100, "the walk does not end"


def walk_back(last_page, ordering, page_size):
    pages, page = [last_page], last_page
    while page.previous_cursor is not None:
        page = keyset_page(Device.objects.all(), ordering=ordering, cursor=page.previous_cursor, page_size=page_size)
        pages.append(page)
        assert len(pages) < 100, "the walk does not end"
    return list(reversed(pages))


def ids(pages) -> list[int]:
    return [device.pk for page in pages for device in page.items]


@pytest.fixture
def devices(db):
    """Eleven devices with ties, NULL last-seen times and some without a model."""
    tenant = TenantFactory()
    now = timezone.now()
    yealink, poly = device_model("Yealink", "T54W"), device_model("Poly", "VVX 450")
    specs = [
        ("alpha", now - timedelta(hours=1), yealink),
        ("bravo", None, None),
        ("alpha", None, poly),
        ("charlie", now - timedelta(hours=3), None),
        ("bravo", now - timedelta(hours=1), yealink),
        ("delta", None, yealink),
        ("alpha", now - timedelta(hours=2), None),
        ("echo", now, poly),
        ("bravo", None, None),
        ("alpha", now - timedelta(hours=1), poly),
        ("foxtrot", now - timedelta(days=1), yealink),
    ]
    return [
        DeviceFactory(tenant=tenant, display_name=name, last_seen_at=seen, model=model) for name, seen, model in specs
    ]


ORDERINGS = [
    ["display_name", "id"],
    ["-display_name", "-id"],
    ["last_seen_at", "id"],
    ["-last_seen_at", "-id"],
    ["model__vendor", "model__model", "id"],
    ["-model__vendor", "-model__model", "-id"],
    ["-created_at", "-id"],
]


@pytest.mark.parametrize("ordering", ORDERINGS, ids=" ".join)
@pytest.mark.parametrize("page_size", [1, 2, 3, 4, 11, 50])
def test_walking_forward_visits_every_row_once_in_database_order(devices, ordering, page_size):
    pages = walk_forward(ordering, page_size)
    assert ids(pages) == _oracle(ordering)
    assert all(len(page.items) == page_size for page in pages[:-1])


@pytest.mark.parametrize("ordering", ORDERINGS, ids=" ".join)
@pytest.mark.parametrize("page_size", [1, 3, 4])
def test_walking_back_from_the_last_page_returns_the_same_pages(devices, ordering, page_size):
    forward = walk_forward(ordering, page_size)
    back = walk_back(forward[-1], ordering, page_size)
    assert ids(back) == _oracle(ordering)
    assert back[0].previous_cursor is None
    assert back[0].next_cursor is not None


def test_nulls_come_last_in_both_directions(devices):
    never_seen = {d.pk for d in devices if d.last_seen_at is None}
    for ordering in (["last_seen_at", "id"], ["-last_seen_at", "-id"]):
        rows = ids(walk_forward(ordering, 2))
        assert set(rows[-len(never_seen):]) == never_seen


def test_devices_without_a_model_are_reached_when_sorting_by_vendor(devices):
    # Sorting through a nullable relation: the vendor of a device without a model is NULL.
    rows = ids(walk_forward(["model__vendor", "model__model", "id"], 2))
    without_model = {d.pk for d in devices if d.model is None}
    assert len(rows) == len(devices)
    assert set(rows[-len(without_model):]) == without_model


def test_ties_are_broken_by_the_last_column(devices):
    alphas = sorted(d.pk for d in devices if d.display_name == "alpha")
    first = keyset_page(Device.objects.all(), ordering=["display_name", "id"], cursor=None, page_size=2)
    second = keyset_page(Device.objects.all(), ordering=["display_name", "id"], cursor=first.next_cursor, page_size=2)
    assert [d.pk for d in first.items + second.items] == alphas


def test_the_first_page_has_no_previous_and_the_last_no_next(devices):
    first = keyset_page(Device.objects.all(), ordering=["-created_at", "-id"], cursor=None, page_size=4)
    assert first.previous_cursor is None and first.next_cursor is not None
    whole = keyset_page(Device.objects.all(), ordering=["-created_at", "-id"], cursor=None, page_size=11)
    assert whole.previous_cursor is None and whole.next_cursor is None


def test_an_empty_list_is_one_empty_page(db):
    page = keyset_page(Device.objects.all(), ordering=["-created_at", "-id"], cursor=None, page_size=10)
    assert (page.items, page.next_cursor, page.previous_cursor) == ([], None, None)


def test_a_cursor_keeps_its_place_when_rows_are_added_before_it(devices):
    first = keyset_page(Device.objects.all(), ordering=["display_name", "id"], cursor=None, page_size=4)
    DeviceFactory(tenant=devices[0].tenant, display_name="aardvark")
    second = keyset_page(Device.objects.all(), ordering=["display_name", "id"], cursor=first.next_cursor, page_size=4)
    assert second.items[0].display_name >= first.items[-1].display_name
    assert not {d.pk for d in first.items} & {d.pk for d in second.items}


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _cursor([1, 2]),
        _cursor({"v": [1]}),
        _cursor({"v": ["alpha"], "b": False}),
        _cursor({"v": ["alpha", 1, 2], "b": False}),
        _cursor({"v": "alpha", "b": False}),
        _cursor({"v": ["alpha", "not a number"], "b": False}),
        _cursor({"v": [["alpha"], {"id": 1}], "b": False}),
    ],
)
def test_it_rejects_invalid_cursors(devices, cursor):
    with pytest.raises(InvalidCursor):
        keyset_page(Device.objects.all(), ordering=["display_name", "id"], cursor=cursor, page_size=2)


def test_it_rejects_a_cursor_made_for_another_sort(devices):
    by_name = keyset_page(Device.objects.all(), ordering=["display_name", "id"], cursor=None, page_size=2)
    with pytest.raises(InvalidCursor):
        keyset_page(
            Device.objects.all(), ordering=["-last_seen_at", "-id"], cursor=by_name.next_cursor, page_size=2
        )
