import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.choices import DeviceState
from enrollment.models import VerificationCode
from enrollment.services import verification_code_issue, verification_codes_issue
from portal.models import AuditEvent
from portal.services import Actor
from tests.conftest import login
from tests.factories import DeviceFactory


def with_codes(tenant, actor, count: int) -> None:
    devices = DeviceFactory.create_batch(count, tenant=tenant)
    verification_codes_issue(tenant=tenant, actor=actor, ids=[d.pk for d in devices])


@pytest.fixture
def admin(client, admin_a):
    return login(client, admin_a)


@pytest.fixture
def technician(tech_a):
    return login(Client(), tech_a)


def issue(device, caller):
    return verification_code_issue(device=device, actor=Actor.of_user(caller.user)).code


# --- who may do what -------------------------------------------------------------------------


def test_a_technician_starts_on_the_look_up_page(technician):
    response = technician.get("/")
    assert response.status_code == 302 and response["Location"] == "/lookup/"


def test_a_technician_cannot_open_the_inventory_or_a_device(technician, waiting_a):
    assert technician.get("/devices/").status_code == 403
    assert technician.get(f"/devices/{waiting_a.pk}/").status_code == 403


def test_a_technician_cannot_generate_codes(technician, waiting_a):
    assert technician.post("/devices/codes/generate/", {"ids": [waiting_a.pk]}).status_code == 403
    assert technician.post(f"/devices/{waiting_a.pk}/code/").status_code == 403
    assert not VerificationCode.objects.exists()


def test_an_end_user_cannot_look_up_codes(user_a, waiting_a):
    assert login(Client(), user_a).get("/lookup/", {"q": waiting_a.mac}).status_code == 403


def test_the_look_up_page_needs_a_login(client):
    response = client.get("/lookup/?q=3456")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_generating_needs_a_post(admin, waiting_a):
    assert admin.get("/devices/codes/generate/").status_code == 405
    assert admin.get(f"/devices/{waiting_a.pk}/code/").status_code == 405


# --- the technician's look-up ----------------------------------------------------------------


@pytest.fixture
def phone(tenant_a):
    return DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-56", location="Reception desk", display_name="Front")


@pytest.mark.parametrize(
    "query", ["3456", "34:56", "12-34-56", "001565123456", "00:15:65:12:34:56", "0015.6512.3456", "reception"]
)
def test_a_technician_finds_a_phone_by_mac_or_location(technician, admin_a, phone, query):
    code = issue(phone, admin_a)
    response = technician.get("/lookup/", {"q": query})
    page = response.content.decode()
    assert response.status_code == 200
    assert "00-15-65-12-34-56" in page and code in page and "23 h 59 min left" in page


def look_up_finds_nothing(technician, query: str) -> None:
    """The look-up page rendered fine, searched for `query`, and showed its empty state."""
    response = technician.get("/lookup/", {"q": query})
    page = response.content.decode()
    assert response.status_code == 200
    assert "<title>Look up a code" in page and f'id="lookup-q" name="q" value="{query}"' in page
    assert f"No device matches “{query}”." in page
    assert "lookup-card" not in page and "00-15-65-12-34-56" not in page


def look_up_finds_the_phone(technician, query: str) -> None:
    response = technician.get("/lookup/", {"q": query})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-mac="00-15-65-12-34-56"' in page and "No device matches" not in page


def test_fewer_than_four_digits_do_not_search_macs(technician, phone):
    look_up_finds_nothing(technician, "56")
    look_up_finds_nothing(technician, "456")
    look_up_finds_the_phone(technician, "3456")  # the look-up itself works: four digits do match


def test_digits_in_the_middle_of_a_mac_do_not_match(technician, phone):
    look_up_finds_nothing(technician, "6512")
    look_up_finds_the_phone(technician, "3456")  # the same length at the end of the MAC does match


def test_the_look_up_never_shows_another_organization(technician, tenant_b, admin_b):
    theirs = DeviceFactory(tenant=tenant_b, mac="00-15-65-AA-34-56", location="Reception")
    verification_code_issue(device=theirs, actor=Actor.of_user(admin_b.user))
    page = technician.get("/lookup/", {"q": "3456"}).content.decode()
    assert theirs.mac not in page and "No device matches" in page


def test_the_look_up_says_when_there_is_no_code(technician, phone, enrolled_a):
    assert "No code yet" in technician.get("/lookup/", {"q": "3456"}).content.decode()
    enrolled_a.location = "Reception desk"
    enrolled_a.save()
    assert "Enrolled: no code needed" in technician.get("/lookup/", {"q": "reception"}).content.decode()


def test_the_look_up_shows_an_expired_code_as_expired(technician, admin_a, phone):
    code = issue(phone, admin_a)
    VerificationCode.objects.filter(device=phone).update(expires_at=timezone.now() - timedelta(minutes=1))
    page = technician.get("/lookup/", {"q": "3456"}).content.decode()
    assert code not in page and "The code expired" in page


def test_htmx_gets_only_the_results(technician, phone):
    response = technician.get("/lookup/", {"q": "3456"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert phone.mac in page and "<html" not in page


def test_each_code_a_technician_is_shown_is_audited_in_one_insert(technician, tech_a, admin_a, tenant_a):
    with_codes = DeviceFactory.create_batch(3, tenant=tenant_a, location="Floor 3")
    DeviceFactory(tenant=tenant_a, location="Floor 3")  # no code: nothing to audit
    verification_codes_issue(tenant=tenant_a, actor=Actor.of_user(admin_a.user), ids=[d.pk for d in with_codes])
    with CaptureQueriesContext(connection) as queries:
        technician.get("/lookup/", {"q": "floor 3"})
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "portal_auditevent"')]
    assert len(inserts) == 1
    views = AuditEvent.objects.filter(action="verification_code.view")
    assert sorted(views.values_list("object_id", flat=True)) == sorted(d.pk for d in with_codes)
    assert {e.actor_user for e in views} == {tech_a.user}


def test_an_admin_reading_codes_is_not_audited_as_a_view(admin, admin_a, phone):
    issue(phone, admin_a)
    admin.get("/lookup/", {"q": "3456"})
    assert not AuditEvent.objects.filter(action="verification_code.view").exists()


# --- admins generate codes in the inventory --------------------------------------------------


def test_an_admin_generates_codes_for_the_selection(admin, tenant_a, waiting_b, enrolled_a):
    chosen = DeviceFactory.create_batch(2, tenant=tenant_a)
    untouched = DeviceFactory(tenant=tenant_a)
    ids = [d.pk for d in chosen] + [waiting_b.pk, enrolled_a.pk]
    data = {"ids": ids, "next": "/devices/?state=waiting_on_activation"}
    response = admin.post("/devices/codes/generate/", data, follow=True)
    assert response.redirect_chain[-1][0] == "/devices/?state=waiting_on_activation"
    page = response.content.decode()
    assert "Generated 2 verification codes, valid for 24 hours. 2 selected devices skipped" in page
    assert set(VerificationCode.objects.values_list("device_id", flat=True)) == {d.pk for d in chosen}
    for device in chosen:
        assert VerificationCode.objects.get(device=device).code in page
    assert untouched.mac in page


def test_an_admin_generates_codes_for_all_waiting_on_activation(admin, tenant_a, enrolled_a, waiting_b):
    waiting = DeviceFactory.create_batch(3, tenant=tenant_a)
    response = admin.post("/devices/codes/generate/", {"scope": "waiting", "ids": [waiting[0].pk]}, follow=True)
    assert "Generated 3 verification codes" in response.content.decode()
    assert set(VerificationCode.objects.values_list("device_id", flat=True)) == {d.pk for d in waiting}


def test_the_list_shows_each_code_with_its_expiry(admin, admin_a, waiting_a, enrolled_a):
    code = issue(waiting_a, admin_a)
    page = admin.get("/devices/").content.decode()
    assert "Verification code" in page and code in page and "expires in 23 h" in page
    assert "Generate codes for all waiting on activation" in page


def test_the_list_loads_the_codes_of_a_page_in_one_query(admin, admin_a, tenant_a):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin.get("/devices/").status_code == 200
        return len(captured.captured_queries)

    actor = Actor.of_user(admin_a.user)
    with_codes(tenant_a, actor, 2)
    few = queries()
    with_codes(tenant_a, actor, 20)
    assert queries() == few


def test_the_device_page_generates_and_regenerates_the_code(admin, waiting_a):
    page = admin.get(f"/devices/{waiting_a.pk}/").content.decode()
    assert "No code yet" in page and "Generate code" in page
    page = admin.post(f"/devices/{waiting_a.pk}/code/", follow=True).content.decode()
    first = VerificationCode.objects.get(device=waiting_a).code
    assert first in page and "Regenerate" in page and f"*55*{first}" in page
    admin.post(f"/devices/{waiting_a.pk}/code/")
    second = VerificationCode.objects.get(device=waiting_a).code
    assert second != first
    assert AuditEvent.objects.filter(action="verification_code.issue", object_id=waiting_a.pk).count() == 2


def test_an_enrolled_device_has_no_generate_button_and_refuses_one(admin, enrolled_a):
    page = admin.get(f"/devices/{enrolled_a.pk}/").content.decode()
    assert "it needs no code" in page and "Generate code" not in page
    response = admin.post(f"/devices/{enrolled_a.pk}/code/", follow=True)
    assert "already enrolled" in response.content.decode()


def test_another_tenants_device_is_a_404(admin, waiting_b):
    assert admin.post(f"/devices/{waiting_b.pk}/code/").status_code == 404
    assert not VerificationCode.objects.exists()


# --- the CSV for technicians -----------------------------------------------------------------


def test_the_export_lists_live_codes_neutralized_and_is_audited(admin, admin_a, tenant_a, waiting_b, admin_b):
    dangerous = DeviceFactory(tenant=tenant_a, location="=HYPERLINK(\"http://x\")", display_name="+1 lobby")
    plain = DeviceFactory(tenant=tenant_a, location="Lab", display_name="Bench")
    expired = DeviceFactory(tenant=tenant_a)
    DeviceFactory(tenant=tenant_a)  # no code
    actor = Actor.of_user(admin_a.user)
    verification_codes_issue(tenant=tenant_a, actor=actor, ids=[dangerous.pk, plain.pk, expired.pk])
    verification_code_issue(device=waiting_b, actor=Actor.of_user(admin_b.user))
    VerificationCode.objects.filter(device=expired).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = admin.get("/devices/codes/export.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    first, second = (VerificationCode.objects.get(device=d) for d in (dangerous, plain))
    assert rows == [
        ["MAC id", "Location", "Display name", "Verification code", "Expires at"],
        [dangerous.mac, "'=HYPERLINK(\"http://x\")", "'+1 lobby", first.code, first.expires_at.isoformat()],
        [plain.mac, "Lab", "Bench", second.code, second.expires_at.isoformat()],
    ]
    assert AuditEvent.objects.filter(action="verification_code.export", actor_user=admin_a.user).count() == 1


def test_the_export_takes_the_inventory_filters(admin, admin_a, tenant_a):
    lab, hall = DeviceFactory(tenant=tenant_a, location="Lab"), DeviceFactory(tenant=tenant_a, location="Hall")
    verification_codes_issue(tenant=tenant_a, actor=Actor.of_user(admin_a.user), ids=[lab.pk, hall.pk])
    body = b"".join(admin.get("/devices/codes/export.csv", {"location": "lab"}).streaming_content).decode()
    assert lab.mac in body and hall.mac not in body
    assert admin.get("/devices/codes/export.csv", {"state": "bogus"}).status_code == 400


def test_states_other_than_waiting_show_no_code_column_value(admin, admin_a, tenant_a):
    device = DeviceFactory(tenant=tenant_a)
    code = issue(device, admin_a)
    device.state = DeviceState.SIGNED_IN
    device.save()
    VerificationCode.objects.filter(device=device).update(ciphertext=None, used_at=timezone.now())
    assert code not in admin.get("/devices/").content.decode()


def test_codes_under_a_key_since_changed_are_not_shown_and_break_nothing(admin, technician, admin_a, phone, settings):
    code = issue(phone, admin_a)
    settings.VERIFICATION_CODE_KEY = "rotated"
    for client, url in [
        (admin, "/devices/"), (admin, f"/devices/{phone.pk}/"), (technician, "/lookup/?q=3456"),
        (admin, f"/api/v1/devices/{phone.pk}/"),
    ]:
        response = client.get(url)
        assert response.status_code == 200 and code not in response.content.decode()
    export = admin.get("/devices/codes/export.csv")
    assert code not in b"".join(export.streaming_content).decode()
    admin.post(f"/devices/{phone.pk}/code/")
    assert VerificationCode.objects.get(device=phone).code is not None


def test_a_technician_downloads_the_codes_csv_and_each_code_in_it_counts_as_viewed(
    technician, tech_a, admin_a, tenant_a, user_a
):
    """Issue 3: "a CSV export for technicians (MAC id, Location, Display name, Verification code,
    Expires at)"; each view of a code by a technician is audited."""
    lab, hall = DeviceFactory(tenant=tenant_a, location="Lab"), DeviceFactory(tenant=tenant_a, location="Hall")
    DeviceFactory(tenant=tenant_a, location="Lab")  # no code: not listed
    verification_codes_issue(tenant=tenant_a, actor=Actor.of_user(admin_a.user), ids=[lab.pk, hall.pk])
    assert 'href="/devices/codes/export.csv"' in technician.get("/lookup/").content.decode()

    response = technician.get("/devices/codes/export.csv", {"location": "lab"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    code = VerificationCode.objects.get(device=lab)
    assert rows == [
        ["MAC id", "Location", "Display name", "Verification code", "Expires at"],
        [lab.mac, "Lab", lab.display_name, code.code, code.expires_at.isoformat()],
    ]
    viewed = AuditEvent.objects.filter(action="verification_code.view", actor_user=tech_a.user)
    assert list(viewed.values_list("object_id", flat=True)) == [lab.pk]
    assert AuditEvent.objects.filter(action="verification_code.export", actor_user=tech_a.user).count() == 1
    assert login(Client(), user_a).get("/devices/codes/export.csv").status_code == 403
